#!/usr/bin/env node
// Driver for laravel-echo's Pusher connector (over pusher-js 8.x) under Node, steered
// through JSON lines (docs/client-driver.md). Channels, events, whispers, the presence
// roster and sign-in go through Echo's API; states and errors come from the pusher-js
// client Echo creates (echo.connector.pusher), which is what Echo itself reads.
//   node drivers/laravel-echo.mjs [--break MODE]
import Echo from 'laravel-echo';
import Pusher from 'pusher-js';

import { BREAK_MODES, installBreak, prepareBreak } from './lib/breaks.mjs';
import { Unsupported, log, packageVersion, parseArgs, report, serve, trustConformanceCA } from './lib/plumbing.mjs';
import {
  DEFAULTS,
  connectOptions,
  eventRelay,
  memberIds,
  subscribedReport,
  subscriptionErrorReport,
  watchConnection,
} from './lib/pusher-wiring.mjs';

const { breakMode } = parseArgs(process.argv.slice(2), BREAK_MODES);
prepareBreak(breakMode, Pusher);
trustConformanceCA();
Pusher.log = (message) => log(`pusher-js: ${message}`);
if (breakMode) log(`broken on purpose: ${breakMode}`);

report({
  type: 'hello',
  client: 'laravel-echo',
  version: `${packageVersion('laravel-echo')}+pusher-js.${packageVersion('pusher-js')}`, // semver build metadata
  features: ['private', 'presence', 'client-events', 'signin', 'tls'],
  defaults: DEFAULTS,
});

let client = null; // {echo, pusher, breaks, delivered, settings, fingerprint}
const wired = new WeakSet(); // Echo channels whose reports are bound

function needClient() {
  if (!client) throw new Error('no client: send connect first');
  return client;
}

function connect(cmd) {
  const { options, settings } = connectOptions(cmd);
  // Echo hands its whole options object to `new Pusher(key, options)`. Channel
  // authorization goes through Echo's authEndpoint (with its auth.headers), user
  // authentication through its userAuthentication option; both are pusher-js 'ajax' POSTs.
  const echoOptions = { broadcaster: 'pusher', key: cmd.key, Pusher, ...options };
  if (cmd.channel_auth_endpoint) echoOptions.authEndpoint = cmd.channel_auth_endpoint;
  if (cmd.user_auth_endpoint) echoOptions.userAuthentication = { endpoint: cmd.user_auth_endpoint, headers: {} };
  const fingerprint = JSON.stringify([cmd.key, options, cmd.channel_auth_endpoint, cmd.user_auth_endpoint]);
  if (client) {
    // Echo has no connect(); a second connect with the same settings reconnects its client.
    if (client.fingerprint !== fingerprint) throw new Error('a client with other settings exists');
    client.pusher.connect();
    return { settings: client.settings };
  }
  const echo = new Echo(echoOptions); // the pusher-js client starts connecting at once
  const pusher = echo.connector.pusher;
  const breaks = installBreak(breakMode, pusher);
  watchConnection(pusher);
  client = { echo, pusher, breaks, delivered: eventRelay(pusher), settings, fingerprint };
  return { settings };
}

// Echo adds the private-/presence- prefix itself.
function echoChannelFor(echo, name) {
  if (name.startsWith('presence-')) return echo.join(name.slice('presence-'.length));
  if (name.startsWith('private-encrypted-')) return echo.encryptedPrivate(name.slice('private-encrypted-'.length));
  if (name.startsWith('private-')) return echo.private(name.slice('private-'.length));
  return echo.channel(name);
}

function subscribe(cmd) {
  const { echo, breaks, delivered } = needClient();
  const name = cmd.channel;
  const channel = echoChannelFor(echo, name);
  breaks.onChannel(channel.subscription); // the pusher-js channel underneath
  if (wired.has(channel)) return;
  wired.add(channel);
  const subscribed = () => report(subscribedReport(channel.subscription));
  if (name.startsWith('presence-')) {
    // here/joining/leaving hand over user_info only; the ids come from the roster Echo reads.
    const roster = () => report({ type: 'members', channel: name, members: memberIds(channel.subscription) });
    channel.here(subscribed).joining(roster).leaving(roster);
  } else {
    channel.subscribed(subscribed);
  }
  channel.error((error) => report(subscriptionErrorReport(name, error)));
  // listenToAll renames events (namespace stripped, or a leading dot); the relay
  // reports the name as it was on the wire.
  channel.listenToAll((event, data) => delivered(name, event, data));
}

function unsubscribe(cmd) {
  needClient().echo.leaveChannel(cmd.channel);
}

function trigger(cmd) {
  const channel = needClient().echo.connector.channels[cmd.channel];
  if (!channel) throw new Error(`not subscribed to ${cmd.channel}`);
  if (typeof channel.whisper !== 'function') throw new Unsupported('Echo can whisper on private and presence channels only');
  if (!cmd.event.startsWith('client-')) throw new Error(`Echo's whisper sends client- events only, not ${cmd.event}`);
  channel.whisper(cmd.event.slice('client-'.length), cmd.data); // Echo adds client-
}

serve(
  {
    connect,
    subscribe,
    unsubscribe,
    trigger,
    signin: () => needClient().echo.connector.signin(),
    disconnect: () => needClient().echo.disconnect(),
  },
  () => client?.echo.disconnect(),
);
