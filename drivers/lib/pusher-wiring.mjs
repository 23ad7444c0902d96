// What both drivers share: they steer a pusher-js client (laravel-echo's Pusher connector
// wraps one), so options, connection reports, sign-in and event relaying are the same.
import { log, report } from './plumbing.mjs';

// pusher-js's own timers (its defaults.ts): activityTimeout 120 s, pongTimeout 30 s.
export const DEFAULTS = { activity_timeout_ms: 120000, pong_timeout_ms: 30000 };

// The pusher-js options for a `connect` command, and the timers the client is given.
// pusher-js treats 0 or a missing value as "use the default". The idle time it waits
// before pinging is the smallest of activityTimeout and the server's advertised
// activity_timeout; `settings` reports the client option.
export function connectOptions(cmd) {
  const settings = {
    activity_timeout_ms: positive(cmd.activity_timeout_ms) ?? DEFAULTS.activity_timeout_ms,
    pong_timeout_ms: positive(cmd.pong_timeout_ms) ?? DEFAULTS.pong_timeout_ms,
  };
  for (const field of ['key', 'host']) {
    if (typeof cmd[field] !== 'string' || !cmd[field]) throw new Error(`connect needs ${field}`);
  }
  const options = {
    cluster: 'mt1', // required by pusher-js; wsHost overrides the host it implies
    wsHost: cmd.host,
    wsPort: cmd.ws_port,
    wssPort: cmd.wss_port,
    forceTLS: Boolean(cmd.tls),
    enabledTransports: ['ws', 'wss'], // no HTTP fallback transports
    enableStats: false,
    activityTimeout: settings.activity_timeout_ms,
    pongTimeout: settings.pong_timeout_ms,
  };
  return { options, settings };
}

function positive(value) {
  return typeof value === 'number' && value > 0 ? value : null;
}

// The close or error code carried by a pusher-js connection error, or null. The
// connection emits {type: 'PusherError', data: {code, message}} for close codes and
// pusher:error messages; the manager repeats it wrapped in a WebSocketError.
export function errorCode(error) {
  const inner = error?.type === 'WebSocketError' ? error.error : error;
  if (inner?.type === 'PusherError' && typeof inner.data?.code === 'number') return inner.data.code;
  return null;
}

function errorMessage(error) {
  const inner = error?.type === 'WebSocketError' ? error.error : error;
  if (inner?.type === 'PusherError') return String(inner.data?.message ?? '');
  const detail = inner?.message ?? inner?.error?.message ?? inner?.error ?? inner;
  return `${error?.type ?? 'error'}: ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`;
}

// State, error and sign-in reports for one pusher-js client.
export function watchConnection(pusher) {
  const manager = pusher.connection;
  manager.bind('state_change', ({ previous, current }) => {
    const message = { type: 'state', previous, current };
    if (current === 'connected') message.socket_id = manager.socket_id;
    report(message);
  });
  // pusher-js starts connecting inside its constructor, before anyone can bind.
  if (manager.state !== 'initialized') {
    report({ type: 'state', previous: 'initialized', current: manager.state });
  }

  // A close code reaches the manager twice in one turn (as PusherError, then wrapped):
  // report it once.
  let lastKey = null;
  manager.bind('error', (error) => {
    const code = errorCode(error);
    const message = errorMessage(error);
    const key = `${code}|${message}`;
    if (key === lastKey) return;
    lastKey = key;
    setImmediate(() => (lastKey = null));
    report({ type: 'error', code, message });
  });

  manager.bind('message', (event) => {
    // pusher-js parses user_data on signin_success (its own listener runs first) and
    // keeps it only when it names a user id.
    if (event.event === 'pusher:signin_success' && pusher.user.user_data) {
      report({ type: 'signed_in', user_id: pusher.user.user_data.id });
    }
  });
  pusher.user.bind('pusher:signin_error', (error) => {
    report({ type: 'signin_error', status: error?.status ?? null, message: String(error?.error ?? '') });
  });
}

// Events as the application receives them, with user_id and the event name taken from
// the frame: the library hands an event to the channel's callbacks, then to the
// manager's 'message' listeners, all in one synchronous dispatch.
export function eventRelay(pusher) {
  let pending = [];
  const flush = (frame) => {
    const batch = pending;
    pending = [];
    for (const { channel, event, data } of batch) {
      const message = { type: 'event', channel, event, data };
      if (frame && frame.channel === channel) {
        message.event = frame.event;
        if (frame.user_id !== undefined) message.user_id = frame.user_id;
      }
      report(message);
    }
  };
  pusher.connection.bind('message', (frame) => flush(frame));
  return function delivered(channel, event, data) {
    if (pending.length === 0) setImmediate(() => flush(null));
    pending.push({ channel, event, data });
  };
}

// The presence roster as pusher-js holds it.
export function memberIds(channel) {
  const ids = [];
  channel.members.each((member) => ids.push(String(member.id)));
  return ids.sort();
}

export function myId(channel) {
  const id = channel.members.myID;
  return id === undefined || id === null ? null : String(id);
}

export function subscribedReport(channel) {
  const message = { type: 'subscribed', channel: channel.name };
  if (channel.members) {
    message.members = memberIds(channel);
    message.me = myId(channel);
  }
  return message;
}

export function subscriptionErrorReport(name, error) {
  log(`subscription error on ${name}: ${JSON.stringify(error)}`);
  return { type: 'subscription_error', channel: name, status: error?.status ?? null };
}
