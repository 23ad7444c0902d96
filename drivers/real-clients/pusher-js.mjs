#!/usr/bin/env node
// pusher-js 8 and the Node `pusher` SDK against a running reference server, one scenario
// after another on the same clients (tests/reference_server/real_clients/test_pusher_js.py
// starts the server and the auth endpoint, acts through the Python SDK at the step, and
// judges what is reported here).
//   node drivers/real-clients/pusher-js.mjs '{"host": ..., "port": ..., ...}'
// alice signs through the test's endpoint (Python SDK), bob through the Node SDK.
import {
  emit,
  finish,
  memberIds,
  newClient,
  nodeSdkHandlers,
  record,
  scenario,
  serverSdk,
  settle,
  step,
  subscribed,
  until,
  watch,
} from './lib.mjs';

const sdk = serverSdk();
const alice = newClient('alice');
const bob = newClient('bob', nodeSdkHandlers(sdk, 'bob'));
const seen = { alice: watch(alice), bob: watch(bob) };
const connected = (client) => client.connection.state === 'connected';

await scenario('connect', async (observed) => {
  await until('both clients connected', () => connected(alice) && connected(bob));
  observed.states = { alice: seen.alice.states, bob: seen.bob.states };
  observed.socket_ids = [alice.connection.socket_id, bob.connection.socket_id];
});

const news = alice.subscribe('news');
const newsEvents = record(news, 'headline', 'multi', 'batch-news', 'py-headline', 'py-batch');
const ofNews = (...names) => newsEvents.filter((e) => names.includes(e.event));

await scenario('public-node-trigger', async (observed) => {
  await subscribed(news);
  observed.status = (await sdk.trigger('news', 'headline', { title: 'hello' })).status;
  await until('headline', () => ofNews('headline').length > 0);
  await settle();
  observed.events = ofNews('headline');
});

const roomA = alice.subscribe('private-room');
const roomB = bob.subscribe('private-room');

await scenario('private-channel', async (observed) => {
  await Promise.all([subscribed(roomA), subscribed(roomB)]);
  observed.subscribed = { alice: roomA.subscribed, bob: roomB.subscribed };
});

const lobbyA = alice.subscribe('presence-lobby');
let lobbyB = null;
const added = [];
const removed = { alice: [], bob: [] };
lobbyA.bind('pusher:member_added', (m) => added.push({ id: m.id, info: m.info }));
lobbyA.bind('pusher:member_removed', (m) => removed.alice.push(m.id));

await scenario('presence', async (observed) => {
  await subscribed(lobbyA);
  observed.alice_at_join = { roster: memberIds(lobbyA), me: lobbyA.members.me };
  lobbyB = bob.subscribe('presence-lobby');
  lobbyB.bind('pusher:member_removed', (m) => removed.bob.push(m.id));
  await subscribed(lobbyB);
  observed.bob_at_join = {
    roster: memberIds(lobbyB),
    count: lobbyB.members.count,
    alice: lobbyB.members.get('alice'),
  };
  const carol = newClient('carol');
  const lobbyC = carol.subscribe('presence-lobby');
  await subscribed(lobbyC);
  await until('member_added carol', () => added.some((m) => m.id === 'carol'));
  carol.disconnect();
  await until('member_removed carol', () => removed.alice.includes('carol'));
  await settle();
  observed.member_added = added;
  observed.member_removed = removed.alice;
  observed.alice_roster_after = memberIds(lobbyA);
});

await scenario('client-events', async (observed) => {
  const bobHears = record(roomB, 'client-typing');
  const aliceHearsOwn = record(roomA, 'client-typing');
  const aliceHearsWave = record(lobbyA, 'client-wave');
  observed.sent = [
    roomA.trigger('client-typing', { who: 'alice' }),
    lobbyB.trigger('client-wave', { who: 'bob' }),
  ];
  await until('both client events', () => bobHears.length > 0 && aliceHearsWave.length > 0);
  await settle();
  observed.bob_received = bobHears;
  observed.alice_received_own = aliceHearsOwn;
  observed.alice_received_presence = aliceHearsWave;
});

await scenario('node-trigger-and-batch', async (observed) => {
  const roomEvents = { alice: record(roomA, 'multi', 'batch-room', 'not-for-alice'), bob: record(roomB, 'multi', 'batch-room', 'not-for-alice') };
  observed.statuses = [
    (await sdk.trigger(['news', 'private-room'], 'multi', { n: 1 })).status,
    (await sdk.triggerBatch([
      { channel: 'news', name: 'batch-news', data: { n: 2 } },
      { channel: 'private-room', name: 'batch-room', data: { n: 3 } },
    ])).status,
    (await sdk.trigger('private-room', 'not-for-alice', { n: 4 }, { socket_id: alice.connection.socket_id })).status,
  ];
  await until('every event', () => ofNews('multi', 'batch-news').length >= 2 && roomEvents.bob.length >= 3);
  await settle();
  observed.news = ofNews('multi', 'batch-news');
  observed.room = roomEvents;
});

async function query(path, params) {
  const response = await sdk.get({ path, params });
  return { status: response.status, body: await response.json() };
}

await scenario('node-queries', async (observed) => {
  observed.presence_channels = await query('/channels', { filter_by_prefix: 'presence-', info: 'user_count' });
  observed.private_channels = await query('/channels', { filter_by_prefix: 'private-' });
  observed.room = await query('/channels/private-room', { info: 'subscription_count' });
  observed.lobby = await query('/channels/presence-lobby', { info: 'user_count' });
  observed.users = await query('/channels/presence-lobby/users');
});

await scenario('python-sdk-delivery', async (observed) => {
  const room = record(roomB, 'py-room');
  await step('python-sdk');
  await until('the Python SDK events', () => ofNews('py-headline', 'py-batch').length >= 2 && room.length >= 1);
  await settle();
  observed.news = ofNews('py-headline', 'py-batch');
  observed.room = room;
});

const alice2 = newClient('alice');
seen.alice2 = watch(alice2);

await scenario('signin-send-to-user', async (observed) => {
  await until('the second alice connected', () => connected(alice2));
  const notes = { alice: [], alice2: [], bob: [] };
  for (const [name, client] of [['alice', alice], ['alice2', alice2], ['bob', bob]]) {
    client.user.bind('note', (data) => notes[name].push(data));
    client.signin();
  }
  await until('all three signed in', () => [alice, alice2, bob].every((c) => c.user.user_data));
  observed.user_data = { alice: alice.user.user_data, alice2: alice2.user.user_data, bob: bob.user.user_data };
  observed.status = (await sdk.sendToUser('alice', 'note', { text: 'for alice' })).status;
  await until('both alice connections got the note', () => notes.alice.length > 0 && notes.alice2.length > 0);
  await settle();
  observed.notes = notes;
});

await scenario('terminate-user', async (observed) => {
  observed.status = (await sdk.terminateUserConnections('alice')).status;
  const gone = (client) => client.connection.state === 'disconnected';
  await until('both alice connections closed', () => gone(alice) && gone(alice2));
  await until('bob told alice left', () => removed.bob.includes('alice'));
  await settle(500);
  observed.alice = { errors: seen.alice.errors, state: alice.connection.state };
  observed.alice2 = { errors: seen.alice2.errors, state: alice2.connection.state };
  observed.bob = { errors: seen.bob.errors, state: bob.connection.state, member_removed: removed.bob };
});

emit({ type: 'log', message: 'scenarios over' });
finish(alice, alice2, bob);
