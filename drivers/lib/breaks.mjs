// Deliberately broken behaviour for `--break MODE` (listed in drivers/breaks.yaml).
// The library is not changed: the driver wraps a few methods of the client's connection
// manager instance (its send path, retry timer, activity check, strategy choice, close
// handling and event emitter), of its channels, of its authorizer, or of the sockets the
// runtime creates, or acts on its events, so each mode misbehaves in exactly one way that the
// certifier must catch.
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
  'stays-away-after-drop',
  'hides-close-code',
  'no-reconnect-after-pong-timeout',
  'no-ws-pong',
  'loses-bindings',
  'raw-data',
  'strips-client-prefix',
  'subscribes-early',
  'old-protocol',
  'auth-as-json',
  'alters-auth',
  'alters-user-data',
  'hides-auth-refusal',
  'impatient',
];

// The modes that act on the WebSocket itself: prepareBreak wraps the runtime's socket
// factory before the client exists (pusher-js opens its first socket in its constructor).
const SOCKET_MODES = ['old-protocol', 'subscribes-early', 'no-ws-pong'];
let latestSocket = null;

// Called with the Pusher class before any client is created.
export function prepareBreak(mode, Pusher) {
  if (!SOCKET_MODES.includes(mode)) return;
  const runtime = Pusher.Runtime;
  const create = runtime.createWebSocket;
  runtime.createWebSocket = function (url) {
    if (mode === 'old-protocol') {
      url = url.replace(/([?&])protocol=\d+/, '$1protocol=5');
      log(`break ${mode}: opening ${url}`);
    }
    const socket = create.call(this, url);
    if (mode === 'no-ws-pong') {
      // faye-websocket's driver answers a ping frame with driver.frame(payload, 'pong').
      const driver = socket._driver;
      const frame = driver.frame;
      driver.frame = function (buffer, type, ...rest) {
        if (type === 'pong') {
          log(`break ${mode}: not answering a ping frame`);
          return true;
        }
        return frame.call(this, buffer, type, ...rest);
      };
    }
    latestSocket = socket;
    return socket;
  };
}

const within = (code, low, high) => code !== null && code >= low && code <= high;
const isAppEvent = (event) =>
  typeof event?.event === 'string' && !event.event.startsWith('pusher') && event.data !== undefined;

// After each ping the manager arms a timer for the pong (any message aborts it); this arms
// another: onTimeout(manager) after delay(manager) ms.
function replacePongTimer(manager, delay, onTimeout) {
  const sendActivityCheck = manager.sendActivityCheck;
  manager.sendActivityCheck = function () {
    sendActivityCheck.call(this);
    this.activityTimer.ensureAborted();
    const timer = setTimeout(() => onTimeout(this), delay(this));
    this.activityTimer = { ensureAborted: () => clearTimeout(timer) };
  };
}

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
    if (mode === 'raw-data') {
      // The app's events leave the connection with their data encoded again.
      const emit = connection.emit;
      connection.emit = function (name, event, ...rest) {
        if (name === 'message' && isAppEvent(event) && typeof event.data !== 'string') {
          event = { ...event, data: JSON.stringify(event.data) };
        }
        return emit.call(this, name, event, ...rest);
      };
    }
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

    case 'stays-away-after-drop': {
      // pusher-js retries 1 s after a close without a Pusher code (a drop is 1006); this
      // gives up instead. Closes with 4000-4999 codes keep their own handling.
      const closed = manager.connectionCallbacks.closed;
      manager.connectionCallbacks.closed = function (...args) {
        if (state.lastCode !== null && state.lastCode >= 4000) return closed.apply(this, args);
        note(`not reconnecting after a close with code ${state.lastCode ?? 'none'}`);
        manager.abandonConnection();
        manager.disconnect();
      };
      break;
    }

    case 'hides-close-code': {
      // Connection errors reach the app without their close (or pusher:error) code.
      const emit = manager.emit;
      manager.emit = function (name, data, ...rest) {
        if (name === 'error' && errorCode(data) !== null) {
          note(`hiding code ${errorCode(data)}`);
          data = { type: 'WebSocketError', error: { type: 'Error', message: 'connection closed' } };
        }
        return emit.call(this, name, data, ...rest);
      };
      break;
    }

    case 'no-reconnect-after-pong-timeout':
      // When the pong timeout runs out, the client disconnects for good instead of
      // pusher-js's immediate reconnection.
      replacePongTimer(manager, (m) => m.options.pongTimeout, (m) => {
        note('no pong in time: disconnecting, not reconnecting');
        m.disconnect();
      });
      break;

    case 'impatient':
      // 100 ms after a ping with no pong, the client gives up on the connection (and
      // reconnects, as pusher-js does after its pong timeout).
      replacePongTimer(manager, () => 100, (m) => {
        note('no pong 100 ms after the ping: giving up on the connection');
        m.retryIn(0);
      });
      break;

    case 'no-ws-pong':
    case 'old-protocol':
      break; // prepareBreak did it

    case 'loses-bindings': {
      // After a reconnection the channels' event bindings are gone.
      const channels = new Set();
      let connectedOnce = false;
      onChannel = (channel) => channels.add(channel);
      manager.bind('connected', () => {
        if (connectedOnce) {
          for (const channel of channels) {
            note(`unbinding the event callbacks of ${channel.name}`);
            channel.unbind_global();
          }
        }
        connectedOnce = true;
      });
      break;
    }

    case 'raw-data':
      break; // the connection wrapper above

    case 'strips-client-prefix':
      filters.push((frame) => {
        if (typeof frame.event !== 'string' || !frame.event.startsWith('client-')) return frame;
        note(`sending ${frame.event} without its client- prefix`);
        return { ...frame, event: frame.event.slice('client-'.length) };
      });
      break;

    case 'subscribes-early':
      // A public channel subscribed while connecting goes out on the open socket at once,
      // before pusher:connection_established (pusher-js holds it until then).
      onChannel = (channel) => {
        if (manager.state === 'connected' || /^(private|presence)-/.test(channel.name)) return;
        const socket = latestSocket;
        if (socket === null) return;
        const frame = JSON.stringify({ event: 'pusher:subscribe', data: { channel: channel.name } });
        const early = () => {
          note(`subscribing ${channel.name} before connection_established`);
          socket.send(frame);
        };
        if (socket.readyState === 1) early();
        else if (socket.readyState === 0) socket.addEventListener('open', early);
      };
      break;

    case 'auth-as-json': {
      // The channel-auth request goes out as a JSON body instead of pusher-js's form.
      const options = pusher.options;
      const endpoint = options.channelAuthorization?.endpoint ?? options.authEndpoint;
      pusher.config.channelAuthorizer = ({ socketId, channelName }, callback) => {
        note(`posting JSON to ${endpoint} for ${channelName}`);
        fetch(endpoint, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ socket_id: socketId, channel_name: channelName }),
        })
          .then(async (response) => {
            if (!response.ok) throw Object.assign(new Error(`HTTP ${response.status}`), { status: response.status });
            callback(null, await response.json());
          })
          .catch((error) => callback(error, null));
      };
      break;
    }

    case 'alters-auth':
      filters.push((frame) => {
        if (frame.event !== 'pusher:subscribe' || !frame.data?.auth) return frame;
        const [key, signature] = String(frame.data.auth).split(':');
        note(`upper-casing the signature for ${frame.data.channel}`);
        return { ...frame, data: { ...frame.data, auth: `${key}:${signature.toUpperCase()}` } };
      });
      break;

    case 'alters-user-data':
      filters.push((frame) => {
        if (frame.event !== 'pusher:signin' || typeof frame.data?.user_data !== 'string') return frame;
        note('re-serializing user_data');
        const userData = JSON.stringify(JSON.parse(frame.data.user_data));
        return { ...frame, data: { ...frame.data, user_data: userData } };
      });
      break;

    case 'hides-auth-refusal': {
      // A refused channel authorization never reaches the app.
      const patched = new WeakSet();
      onChannel = (channel) => {
        if (patched.has(channel)) return;
        patched.add(channel);
        const emit = channel.emit;
        channel.emit = function (name, ...rest) {
          if (name === 'pusher:subscription_error') {
            note(`hiding the subscription error of ${channel.name}`);
            return this;
          }
          return emit.call(this, name, ...rest);
        };
      };
      break;
    }

    default:
      throw new Error(`unknown break mode ${mode}`);
  }
  return { onChannel: (channel) => onChannel(channel) };
}
