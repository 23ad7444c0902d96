#!/usr/bin/env node
// Driver for pusher-js 8.x under Node, steered through JSON lines (docs/client-driver.md).
//   node drivers/pusher-js.mjs [--break MODE]
import Pusher from 'pusher-js';

import { BREAK_MODES, installBreak, prepareBreak } from './lib/breaks.mjs';
import { log, packageVersion, parseArgs, report, serve, trustConformanceCA } from './lib/plumbing.mjs';
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
// pusher-js logs (debug included) go to the transcript, never to stdout.
Pusher.log = (message) => log(`pusher-js: ${message}`);
if (breakMode) log(`broken on purpose: ${breakMode}`);

report({
  type: 'hello',
  client: 'pusher-js',
  version: packageVersion('pusher-js'),
  features: ['private', 'presence', 'client-events', 'signin', 'tls'],
  defaults: DEFAULTS,
});

let client = null; // {pusher, breaks, delivered, settings, fingerprint}
const wired = new WeakSet(); // channels whose reports are bound

function needClient() {
  if (!client) throw new Error('no client: send connect first');
  return client;
}

function connect(cmd) {
  const { options, settings } = connectOptions(cmd);
  if (cmd.channel_auth_endpoint) {
    options.channelAuthorization = { endpoint: cmd.channel_auth_endpoint, transport: 'ajax' };
  }
  if (cmd.user_auth_endpoint) {
    options.userAuthentication = { endpoint: cmd.user_auth_endpoint, transport: 'ajax' };
  }
  const fingerprint = JSON.stringify([cmd.key, options]);
  if (client) {
    // A second connect with the same settings reconnects the same client (and its channels).
    if (client.fingerprint !== fingerprint) throw new Error('a client with other settings exists');
    client.pusher.connect();
    return { settings: client.settings };
  }
  const pusher = new Pusher(cmd.key, options); // starts connecting at once
  const breaks = installBreak(breakMode, pusher);
  watchConnection(pusher);
  client = { pusher, breaks, delivered: eventRelay(pusher), settings, fingerprint };
  return { settings };
}

function subscribe(cmd) {
  const { pusher, breaks, delivered } = needClient();
  const name = cmd.channel;
  const channel = pusher.subscribe(name);
  breaks.onChannel(channel);
  if (wired.has(channel)) return;
  wired.add(channel);
  channel.bind('pusher:subscription_succeeded', () => report(subscribedReport(channel)));
  channel.bind('pusher:subscription_error', (error) => report(subscriptionErrorReport(name, error)));
  if (channel.members) {
    const roster = () => report({ type: 'members', channel: name, members: memberIds(channel) });
    channel.bind('pusher:member_added', roster);
    channel.bind('pusher:member_removed', roster);
  }
  channel.bind_global((event, data) => {
    if (event.startsWith('pusher:') || event.startsWith('pusher_internal:')) return;
    delivered(name, event, data);
  });
}

function unsubscribe(cmd) {
  needClient().pusher.unsubscribe(cmd.channel);
}

function trigger(cmd) {
  const channel = needClient().pusher.channel(cmd.channel);
  if (!channel) throw new Error(`not subscribed to ${cmd.channel}`);
  // pusher-js refuses names without the client- prefix and sends nothing while disconnected.
  if (!channel.trigger(cmd.event, cmd.data)) throw new Error('pusher-js did not send it: no open connection');
}

serve(
  {
    connect,
    subscribe,
    unsubscribe,
    trigger,
    signin: () => needClient().pusher.signin(),
    disconnect: () => needClient().pusher.disconnect(),
  },
  () => client?.pusher.disconnect(),
);
