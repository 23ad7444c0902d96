#!/usr/bin/env node
// pusher-js 8 through a server restart: subscribed to a public and a private channel, the
// server is stopped with SIGTERM (its drain closes every connection with 4200, "reconnect
// now") and a new server process is started on the same port by the test at the `sigterm`
// step. pusher-js must come back by itself, authorize again for its new socket id and
// resubscribe both channels; an event triggered afterwards must reach it.
// tests/reference_server/real_clients/test_reconnect_after_sigterm.py judges the reports.
//   node drivers/real-clients/reconnect.mjs '{"host": ..., "port": ..., ...}'
import { finish, newClient, record, scenario, serverSdk, settle, step, until, watch } from './lib.mjs';

// pusher-js retries a refused or failed connection with growing delays; the restart
// takes a few seconds.
const RECONNECT_MS = 20000;

const sdk = serverSdk();
const gina = newClient('gina');
const seen = watch(gina);
const ticker = gina.subscribe('ticker');
const desk = gina.subscribe('private-desk');
const succeeded = { ticker: 0, desk: 0 };
ticker.bind('pusher:subscription_succeeded', () => succeeded.ticker++);
desk.bind('pusher:subscription_succeeded', () => succeeded.desk++);
const ticks = record(ticker, 'tick');
const notes = record(desk, 'note');

await scenario('before-sigterm', async (observed) => {
  await until('subscribed to both', () => succeeded.ticker === 1 && succeeded.desk === 1);
  observed.status = (await sdk.trigger('ticker', 'tick', { n: 1 })).status;
  await until('the first tick', () => ticks.length === 1);
  observed.socket_id = gina.connection.socket_id;
});

await scenario('after-restart', async (observed) => {
  await step('sigterm', { socket_id: gina.connection.socket_id });
  await until(
    'reconnected and resubscribed',
    () => gina.connection.state === 'connected' && succeeded.ticker === 2 && succeeded.desk === 2,
    RECONNECT_MS,
  );
  observed.statuses = [
    (await sdk.trigger('ticker', 'tick', { n: 2 })).status,
    (await sdk.trigger('private-desk', 'note', { n: 3 })).status,
  ];
  await until('the events after the restart', () => ticks.length === 2 && notes.length === 1);
  await settle();
  observed.errors = seen.errors;
  observed.states = seen.states;
  observed.socket_ids = seen.socket_ids;
  observed.subscription_succeeded = succeeded;
  observed.ticks = ticks;
  observed.notes = notes;
});

finish(gina);
