#!/usr/bin/env node
// laravel-echo 2 (its Pusher connector, over pusher-js 8) and the Node `pusher` SDK against
// a running reference server, as a Laravel front end uses them: private and presence
// channels through the auth endpoint (Echo's authEndpoint, signed by the Python SDK in the
// test), listen, here/joining/leaving, whisper. tests/reference_server/real_clients/
// test_laravel_echo.py judges what is reported here.
//   node drivers/real-clients/laravel-echo.mjs '{"host": ..., "port": ..., ...}'
import Echo from 'laravel-echo';
import Pusher from 'pusher-js';

import { finish, scenario, serverSdk, settings, settle, until } from './lib.mjs';

// Echo hands its whole options object to `new Pusher(key, options)`; its authEndpoint and
// auth.params become pusher-js's channel authorization request.
function newEcho(userId) {
  return new Echo({
    broadcaster: 'pusher',
    key: settings.key,
    Pusher,
    cluster: 'mt1', // required by pusher-js; wsHost overrides the host it implies
    wsHost: settings.host,
    wsPort: settings.port,
    forceTLS: false,
    enabledTransports: ['ws'],
    enableStats: false,
    authEndpoint: settings.auth_endpoint,
    auth: { headers: {}, params: { user_id: userId } },
  });
}

// Echo's callbacks get the data only; each entry says which callback heard it.
function collector() {
  const heard = [];
  const hear = (name) => (data) => heard.push({ name, data });
  return { heard, hear, of: (name) => heard.filter((h) => h.name === name).map((h) => h.data) };
}

const sdk = serverSdk();
const erin = newEcho('erin');
const frank = newEcho('frank');
const connected = (echo) => echo.connector.pusher.connection.state === 'connected';

await scenario('echo-connect', async (observed) => {
  await until('both connected', () => connected(erin) && connected(frank));
  observed.socket_ids = [erin.socketId(), frank.socketId()];
});

const erinHears = collector();
const frankHears = collector();
let subscribedCount = 0;
const erinOrders = erin
  .private('orders')
  .subscribed(() => subscribedCount++)
  .listen('OrderShipped', erinHears.hear('OrderShipped'))
  .listen('.status-changed', erinHears.hear('.status-changed'))
  .listenForWhisper('typing', erinHears.hear('whisper:typing'));
frank
  .private('orders')
  .subscribed(() => subscribedCount++)
  .listenForWhisper('typing', frankHears.hear('whisper:typing'));

await scenario('echo-private-listen', async (observed) => {
  await until('both subscribed to private-orders', () => subscribedCount === 2);
  observed.statuses = [
    // Laravel broadcasts under the event's class name; Echo's default namespace is App.Events.
    (await sdk.trigger('private-orders', 'App\\Events\\OrderShipped', { id: 7 })).status,
    (await sdk.trigger('private-orders', 'status-changed', { status: 'packed' })).status,
  ];
  await until('both events', () => erinHears.heard.length >= 2);
  await settle();
  observed.erin = erinHears.heard;
});

const roster = { erin: collector(), frank: collector() };
let erinRoom = null;
let frankRoom = null;

await scenario('echo-presence', async (observed) => {
  erinRoom = erin
    .join('room')
    .here(roster.erin.hear('here'))
    .joining(roster.erin.hear('joining'))
    .leaving(roster.erin.hear('leaving'))
    .listen('.announcement', roster.erin.hear('announcement'))
    .listenForWhisper('wave', roster.erin.hear('whisper:wave'));
  await until('erin here', () => roster.erin.of('here').length > 0);
  frankRoom = frank.join('room').here(roster.frank.hear('here'));
  await until('frank here and erin told', () => roster.frank.of('here').length > 0 && roster.erin.of('joining').length > 0);
  observed.status = (await sdk.trigger('presence-room', 'announcement', { text: 'welcome' })).status;
  await until('the announcement', () => roster.erin.of('announcement').length > 0);
  await settle();
  observed.erin = roster.erin.heard;
  observed.frank = roster.frank.heard;
});

await scenario('echo-whisper', async (observed) => {
  erinOrders.whisper('typing', { name: 'Erin' });
  frankRoom.whisper('wave', { name: 'Frank' });
  await until('both whispers', () => frankHears.heard.length > 0 && roster.erin.of('whisper:wave').length > 0);
  await settle();
  observed.frank = frankHears.heard;
  observed.erin_own_whisper = erinHears.of('whisper:typing');
  observed.erin_presence = roster.erin.of('whisper:wave');
});

await scenario('echo-leaving', async (observed) => {
  frank.leave('room');
  await until('erin told frank left', () => roster.erin.of('leaving').length > 0);
  await settle();
  observed.leaving = roster.erin.of('leaving');
  observed.erin_roster = Object.keys(erinRoom.subscription.members.members).sort();
});

finish(erin.connector.pusher, frank.connector.pusher);
