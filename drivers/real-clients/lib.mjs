// What the real-client scenario scripts share (tests/reference_server/real_clients/ runs
// them). A script gets its settings as one JSON argument, reports on stdout as JSON lines
// and hears from the test on stdin:
//   {"type": "step", "step": NAME, ...}    the script waits until the test acts, then
//   {"type": "continue", "step": NAME}     comes back on stdin
//   {"type": "result", "scenario": NAME, "ok": bool, "observed": {...}, "error"?: str}
//   {"type": "done"}
// The scripts record what the clients observed; the Python tests judge it.
import readline from 'node:readline';

import PusherServer from 'pusher';
import Pusher from 'pusher-js';

// stdout carries the protocol only: route every console method to stderr.
for (const name of ['log', 'info', 'warn', 'debug']) {
  console[name] = (...args) => console.error(...args);
}

export function log(...parts) {
  const stamp = new Date().toISOString().slice(11, 23);
  process.stderr.write(`[scenario ${stamp}] ${parts.join(' ')}\n`);
}

Pusher.log = (message) => log(`pusher-js: ${message}`);

export function emit(message) {
  process.stdout.write(JSON.stringify(message) + '\n');
}

// Settings from the test: host, port, app_id, key, secret, auth_endpoint,
// user_auth_endpoint, wait_ms (the longest any one wait may take).
export const settings = JSON.parse(process.argv[2] ?? '{}');
for (const field of ['host', 'port', 'app_id', 'key', 'secret', 'auth_endpoint', 'user_auth_endpoint']) {
  if (settings[field] === undefined) {
    process.stderr.write(`settings need ${field}\n`);
    process.exit(2);
  }
}
const WAIT_MS = settings.wait_ms ?? 5000;

const incoming = [];
const waiters = [];
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const message = JSON.parse(line);
  const waiter = waiters.shift();
  if (waiter) waiter(message);
  else incoming.push(message);
});

// Hand control to the test (it acts on the server or through the Python SDK), and
// wait for its go-ahead.
export async function step(name, details = {}) {
  emit({ type: 'step', step: name, ...details });
  const message = incoming.length
    ? incoming.shift()
    : await new Promise((resolve) => waiters.push(resolve));
  if (message.type !== 'continue' || message.step !== name) {
    throw new Error(`expected continue for ${name}, got ${JSON.stringify(message)}`);
  }
}

// Resolves once check() holds; polls, bounded by `ms`.
export function until(what, check, ms = WAIT_MS) {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const poll = () => {
      if (check()) return resolve();
      if (Date.now() - started > ms) return reject(new Error(`waited ${ms} ms for ${what}`));
      setTimeout(poll, 10);
    };
    poll();
  });
}

// Quiet time: lets anything that should not arrive show up before it is judged.
export const settle = (ms = 300) => new Promise((resolve) => setTimeout(resolve, ms));

// One scenario: its observations are reported whether it completes or not.
export async function scenario(name, body) {
  const observed = {};
  try {
    await body(observed);
    emit({ type: 'result', scenario: name, ok: true, observed });
  } catch (error) {
    log(`scenario ${name} failed: ${error.stack ?? error}`);
    emit({ type: 'result', scenario: name, ok: false, observed, error: String(error.message ?? error) });
  }
}

// The pusher-js options that point a client at the reference server, plain ws only.
// Without a handler of its own, a client authorizes channels and signs in through the
// test's auth endpoint, which signs with the Python SDK; `user_id` tells it who is asking.
export function clientOptions(userId, handlers = {}) {
  return {
    cluster: 'mt1', // required by pusher-js; wsHost overrides the host it implies
    wsHost: settings.host,
    wsPort: settings.port,
    forceTLS: false,
    enabledTransports: ['ws'],
    enableStats: false,
    channelAuthorization: handlers.channel ?? {
      endpoint: settings.auth_endpoint,
      transport: 'ajax',
      params: { user_id: userId },
    },
    userAuthentication: handlers.user ?? {
      endpoint: settings.user_auth_endpoint,
      transport: 'ajax',
      params: { user_id: userId },
    },
  };
}

export function newClient(userId, handlers) {
  return new Pusher(settings.key, clientOptions(userId, handlers));
}

// The Node server SDK, pointed at the reference server's HTTP API.
export function serverSdk() {
  return new PusherServer({
    appId: settings.app_id,
    key: settings.key,
    secret: settings.secret,
    host: settings.host,
    port: String(settings.port),
    useTLS: false,
  });
}

// pusher-js handlers that sign with the Node SDK in-process, as an app's own endpoint
// built on it would: channel authorization (with presence data) and user sign-in.
export function nodeSdkHandlers(sdk, userId) {
  return {
    channel: {
      customHandler: ({ socketId, channelName }, callback) => {
        const presence = channelName.startsWith('presence-') ? memberData(userId) : undefined;
        callback(null, sdk.authorizeChannel(socketId, channelName, presence));
      },
    },
    user: {
      customHandler: ({ socketId }, callback) => {
        callback(null, sdk.authenticateUser(socketId, { id: userId, name: displayName(userId) }));
      },
    },
  };
}

// What a presence member carries; the Python endpoint builds the same.
export function memberData(userId) {
  return { user_id: userId, user_info: { name: displayName(userId) } };
}

export function displayName(userId) {
  return userId.charAt(0).toUpperCase() + userId.slice(1);
}

// Every state a client goes through and every error code it reports, in order.
export function watch(client) {
  // pusher-js starts connecting inside its constructor, before anyone can bind.
  const seen = { states: [client.connection.state], errors: [], socket_ids: [] };
  client.connection.bind('state_change', ({ current }) => {
    seen.states.push(current);
    if (current === 'connected') seen.socket_ids.push(client.connection.socket_id);
  });
  client.connection.bind('error', (error) => {
    const inner = error?.type === 'WebSocketError' ? error.error : error;
    const code = inner?.data?.code ?? null;
    if (seen.errors.at(-1) !== code) seen.errors.push(code);
  });
  return seen;
}

// A channel's events of these names as the application receives them: name, data and
// the metadata pusher-js hands a named binding (its global bindings get no metadata).
export function record(channel, ...names) {
  const events = [];
  for (const event of names) {
    channel.bind(event, (data, metadata) => events.push({ event, data, user_id: metadata?.user_id ?? null }));
  }
  return events;
}

export function subscribed(channel) {
  return new Promise((resolve, reject) => {
    if (channel.subscribed) return resolve(channel);
    const timer = setTimeout(() => reject(new Error(`no subscription to ${channel.name}`)), WAIT_MS);
    channel.bind('pusher:subscription_succeeded', () => {
      clearTimeout(timer);
      resolve(channel);
    });
    channel.bind('pusher:subscription_error', (error) => {
      clearTimeout(timer);
      reject(new Error(`subscription to ${channel.name} refused: ${JSON.stringify(error)}`));
    });
  });
}

export function memberIds(channel) {
  const ids = [];
  channel.members.each((member) => ids.push(String(member.id)));
  return ids.sort();
}

export function finish(...clients) {
  for (const client of clients) client.disconnect();
  emit({ type: 'done' });
  // pusher-js keeps timers; the scenario is over.
  setTimeout(() => process.exit(0), 50);
}
