// JSON-lines plumbing shared by the drivers (the contract is docs/client-driver.md):
// commands arrive on stdin, reports leave on stdout, anything else goes to stderr.
import { readFileSync } from 'node:fs';
import readline from 'node:readline';
import tls from 'node:tls';

// stdout carries reports only: route every console method to stderr.
for (const name of ['log', 'info', 'warn', 'debug']) {
  console[name] = (...args) => console.error(...args);
}

export function report(message) {
  process.stdout.write(JSON.stringify(message) + '\n');
}

export function log(...parts) {
  const stamp = new Date().toISOString().slice(11, 23);
  process.stderr.write(`[driver ${stamp}] ${parts.join(' ')}\n`);
}

// A library error that the driver reports as `unsupported` rather than `failed`.
export class Unsupported extends Error {}

export function packageVersion(name) {
  const url = new URL(`../node_modules/${name}/package.json`, import.meta.url);
  return JSON.parse(readFileSync(url, 'utf8')).version;
}

// `--break MODE` (or `--break=MODE`); anything else on the command line is refused.
export function parseArgs(argv, knownModes) {
  let mode = null;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--break') mode = argv[++i];
    else if (arg.startsWith('--break=')) mode = arg.slice('--break='.length);
    else fail(`unknown argument ${arg}`);
  }
  if (mode !== null && !knownModes.includes(mode)) {
    fail(`unknown break mode ${mode}; known: ${knownModes.join(', ')}`);
  }
  return { breakMode: mode };
}

function fail(message) {
  process.stderr.write(message + '\n');
  process.exit(2);
}

// Node reads NODE_EXTRA_CA_CERTS once, at start-up. When only CONFORMANCE_CA_FILE is
// set, add that bundle to the CAs of every TLS connection that names none of its own
// (the library's WebSocket and its HTTP auth requests both go through tls.connect).
export function trustConformanceCA(env = process.env) {
  const file = env.CONFORMANCE_CA_FILE;
  if (!file || env.NODE_EXTRA_CA_CERTS === file) return;
  let extra;
  try {
    extra = readFileSync(file, 'utf8');
  } catch (error) {
    log(`cannot read CONFORMANCE_CA_FILE: ${error.message}`);
    return;
  }
  const bundle = [...tls.rootCertificates, extra];
  const connect = tls.connect;
  tls.connect = function connectTrustingConformanceCA(...args) {
    const options = args.find((arg) => arg !== null && typeof arg === 'object');
    if (options && !options.ca) options.ca = bundle;
    return connect.apply(this, args);
  };
  log(`trusting CA bundle ${file} (NODE_EXTRA_CA_CERTS was not set to it)`);
}

// Reads commands line by line and answers each: handlers[cmd.do](cmd) returns extra
// fields for the `ok` reply (or nothing), throws Unsupported for `unsupported`, or
// throws anything else for `failed`. `quit` and the end of stdin call onQuit, then exit 0.
export function serve(handlers, onQuit) {
  let quitting = false;
  const quit = async () => {
    if (quitting) return;
    quitting = true;
    try {
      await onQuit();
    } catch (error) {
      log(`error while quitting: ${error?.stack ?? error}`);
    }
    process.stdout.write('', () => process.exit(0));
  };
  process.on('uncaughtException', (error) => {
    log(`uncaught: ${error?.stack ?? error}`);
    report({ type: 'error', code: null, message: `driver: ${error?.message ?? error}` });
  });
  process.on('unhandledRejection', (error) => log(`unhandled rejection: ${error?.stack ?? error}`));

  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  let queue = Promise.resolve();
  lines.on('line', (line) => {
    if (!line.trim()) return;
    queue = queue.then(() => handleLine(line));
  });
  lines.on('close', () => queue.then(quit));

  async function handleLine(line) {
    let cmd;
    try {
      cmd = JSON.parse(line);
    } catch {
      log(`not JSON, ignored: ${line}`);
      return;
    }
    const re = cmd.id;
    log(`command ${line}`);
    if (cmd.do === 'quit') {
      report({ type: 'ok', re });
      await quit();
      return;
    }
    const handler = handlers[cmd.do];
    if (!handler) {
      report({ type: 'unsupported', re, why: `unknown command ${JSON.stringify(cmd.do)}` });
      return;
    }
    try {
      const extra = await handler(cmd);
      report({ type: 'ok', re, ...(extra ?? {}) });
    } catch (error) {
      const why = String(error?.message ?? error);
      log(`command ${re} ${error instanceof Unsupported ? 'unsupported' : 'failed'}: ${error?.stack ?? error}`);
      report({ type: error instanceof Unsupported ? 'unsupported' : 'failed', re, why });
    }
  }
}
