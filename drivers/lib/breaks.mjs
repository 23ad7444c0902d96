// Deliberately broken behaviour for `--break MODE` (listed in drivers/breaks.yaml).
// The library is not changed: the driver wraps a few methods of the client's connection
// manager instance (its send path, retry timer and strategy choice) or acts on its events,
// so each mode misbehaves in exactly one way that the certifier must catch.
import { log } from './plumbing.mjs';
import { errorCode } from './pusher-wiring.mjs';

export const BREAK_MODES = [
  'reconnect-after-4009',
  'never-ping',
  'no-pong',
  'forget-channel-on-resubscribe',
  'stale-auth',
  'reconnect-hammer',
  'no-reconnect-on-4200',
  'keeps-stale-members',
  'no-signin-repeat',
  'reconnects-plain-on-4000',
];

const within = (code, low, high) => code !== null && code >= low && code <= high;

// Returns {onChannel(channel)}: the driver calls it for every pusher-js channel it
// subscribes, before it binds its own report callbacks.
export function installBreak(mode, pusher) {
  if (!mode) return { onChannel: () => {} };
  const manager = pusher.connection;
  const state = { connections: 0, lastCode: null };
  const filters = []; // (frame) => frame to send, or null to drop it
  let onChannel = () => {};
  const note = (what) => log(`break ${mode}: ${what}`);

  // The last close (or error) code seen; reset when a new connection is made.
  manager.bind('error', (error) => {
    const code = errorCode(error);
    if (code !== null) state.lastCode = code;
  });
  // Every frame the client sends after the handshake goes through the connection's send.
  const setConnection = manager.setConnection;
  manager.setConnection = function (connection) {
    state.connections += 1;
    state.lastCode = null;
    const send = connection.send;
    connection.send = function (data) {
      const frame = filterFrame(data);
      return frame === null ? true : send.call(this, frame);
    };
    return setConnection.call(this, connection);
  };

  function filterFrame(data) {
    if (filters.length === 0) return data;
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return data;
    }
    for (const filter of filters) {
      frame = filter(frame);
      if (frame === null) return null;
    }
    return JSON.stringify(frame);
  }

  const dropEvent = (name) => (frame) => {
    if (frame.event !== name) return frame;
    note(`dropped ${name}`);
    return null;
  };

  switch (mode) {
    case 'reconnect-after-4009':
      manager.bind('disconnected', () => {
        if (!within(state.lastCode, 4001, 4099)) return;
        note(`connecting again in 1 s after close ${state.lastCode}`);
        state.lastCode = null;
        setTimeout(() => pusher.connect(), 1000); // as pusher-js retries after an ordinary drop
      });
      break;

    case 'never-ping':
      filters.push(dropEvent('pusher:ping'));
      break;

    case 'no-pong':
      filters.push(dropEvent('pusher:pong'));
      break;

    case 'forget-channel-on-resubscribe': {
      // The first channel subscribed is not subscribed again on any later connection.
      let victim = null;
      filters.push((frame) => {
        if (frame.event !== 'pusher:subscribe') return frame;
        const name = frame.data?.channel;
        if (victim === null) victim = { name, connection: state.connections };
        if (name === victim.name && state.connections > victim.connection) {
          note(`not resubscribing ${name}`);
          return null;
        }
        return frame;
      });
      break;
    }

    case 'stale-auth': {
      // Resubscriptions carry the auth signed for the first connection's socket_id.
      const firstAuth = new Map();
      filters.push((frame) => {
        if (frame.event !== 'pusher:subscribe' || !frame.data?.auth) return frame;
        const name = frame.data.channel;
        if (!firstAuth.has(name)) {
          firstAuth.set(name, { auth: frame.data.auth, channel_data: frame.data.channel_data });
          return frame;
        }
        note(`reusing the first auth for ${name}`);
        return { ...frame, data: { ...frame.data, ...firstAuth.get(name) } };
      });
      break;
    }

    case 'reconnect-hammer': {
      // pusher-js waits 1 s after a 4100-4199 close; this retries at once.
      const retryIn = manager.retryIn;
      manager.retryIn = function (delay) {
        if (within(state.lastCode, 4100, 4199) && delay > 0) {
          note(`retrying now instead of in ${delay} ms after close ${state.lastCode}`);
          delay = 0;
        }
        return retryIn.call(this, delay);
      };
      break;
    }

    case 'no-reconnect-on-4200': {
      // pusher-js reconnects at once after a 4200-4299 close; this gives up.
      const retryIn = manager.retryIn;
      let stopping = false;
      manager.retryIn = function (delay) {
        if (!within(state.lastCode, 4200, 4299)) return retryIn.call(this, delay);
        if (!stopping) {
          stopping = true;
          note(`not reconnecting after close ${state.lastCode}`);
          setTimeout(() => {
            stopping = false;
            pusher.disconnect();
          }, 0);
        }
      };
      break;
    }

    case 'keeps-stale-members': {
      // Members seen before a reconnect stay in the roster after the resubscription.
      const patched = new WeakSet();
      onChannel = (channel) => {
        if (!channel.members || patched.has(channel)) return;
        patched.add(channel);
        const seen = new Map();
        channel.bind('pusher:subscription_succeeded', () => {
          for (const [id, info] of seen) {
            if (channel.members.get(id) === null) {
              note(`keeping ${id} in ${channel.name}`);
              channel.members.addMember({ user_id: id, user_info: info });
            }
          }
          channel.members.each((member) => seen.set(member.id, member.info));
        });
        channel.bind('pusher:member_added', (member) => seen.set(member.id, member.info));
        channel.bind('pusher:member_removed', (member) => seen.delete(member.id));
      };
      break;
    }

    case 'no-signin-repeat': {
      // Sign-in is sent on the first connection that signs in, never again.
      let firstSignin = null;
      filters.push((frame) => {
        if (frame.event !== 'pusher:signin') return frame;
        if (firstSignin === null) firstSignin = state.connections;
        if (state.connections === firstSignin) return frame;
        note('not repeating pusher:signin');
        return null;
      });
      break;
    }

    case 'reconnects-plain-on-4000': {
      // pusher-js switches to wss after a 4000 close; this stays on plain ws.
      const updateStrategy = manager.updateStrategy;
      manager.updateStrategy = function () {
        if (state.lastCode === 4000) {
          note('staying on plain ws after close 4000');
          this.usingTLS = false;
        }
        return updateStrategy.call(this);
      };
      break;
    }

    default:
      throw new Error(`unknown break mode ${mode}`);
  }
  return { onChannel: (channel) => onChannel(channel) };
}
