#!/usr/bin/env node
// Interop peer built on Node's `ws`.
//
//   node_peer.js server         echo server on 127.0.0.1, port chosen by the OS
//   node_peer.js client URL     runs the interop checks against an echo server
//
// Server: prints `listening on 127.0.0.1:PORT` once bound, echoes text and binary messages,
// picks subprotocol chat.v2 (else chat.v1) when offered, and answers the text `close-me` by
// closing with 4002 "asked". It exits by itself after SERVER_LIFETIME_MS.
//
// Client: prints `ok NAME` or `FAIL NAME: WHY` per check and exits 0 only if all pass.
//
// With INTEROP_DEFLATE=1 both offer and accept permessage-deflate (compressing every message,
// however short): the server prints `extensions: VALUE` per connection, and the client adds the
// check `deflate` (the server accepted permessage-deflate).
'use strict';

const crypto = require('crypto');
const path = require('path');

function loadWs() {
  try {
    return require('ws');
  } catch (_) {
    // The copy scripts/install-peers.sh installs.
    return require(path.join(__dirname, '..', '..', 'target', 'interop', 'node', 'node_modules', 'ws'));
  }
}
const { WebSocket, WebSocketServer } = loadWs();

const MAX_MESSAGE = 64 * 1024 * 1024;
const LARGE = 16 * 1024 * 1024;
const STEP_TIMEOUT_MS = 30000;
const SERVER_LIFETIME_MS = 600000;
const DEFLATE = process.env.INTEROP_DEFLATE === '1';
const PER_MESSAGE_DEFLATE = DEFLATE ? { threshold: 0 } : false;

function runServer() {
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    maxPayload: MAX_MESSAGE,
    perMessageDeflate: PER_MESSAGE_DEFLATE,
    handleProtocols: (offered) => {
      for (const name of ['chat.v2', 'chat.v1']) {
        if (offered.has(name)) return name;
      }
      return false;
    },
  });
  wss.on('listening', () => {
    process.stdout.write(`listening on 127.0.0.1:${wss.address().port}\n`);
  });
  wss.on('connection', (ws) => {
    if (DEFLATE) process.stdout.write(`extensions: ${ws.extensions}\n`);
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => {
      if (!isBinary && data.toString() === 'close-me') {
        ws.close(4002, 'asked');
        return;
      }
      ws.send(data, { binary: isBinary });
    });
  });
  setTimeout(() => {
    process.stderr.write('node peer: lifetime reached, exiting\n');
    process.exit(0);
  }, SERVER_LIFETIME_MS);
}

// Resolves with the next event of one of the given kinds queued by `watch`, or rejects
// after the step timeout.
function watch(ws) {
  const queue = [];
  let waiter = null;
  const push = (ev) => {
    queue.push(ev);
    if (waiter) {
      const w = waiter;
      waiter = null;
      w();
    }
  };
  ws.on('message', (data, isBinary) => push({ kind: 'message', data, isBinary }));
  ws.on('pong', (data) => push({ kind: 'pong', data }));
  ws.on('close', (code, reason) => push({ kind: 'close', code, reason: reason.toString() }));
  ws.on('error', (err) => push({ kind: 'error', err }));
  return function next(kinds) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiter = null;
        reject(new Error(`timed out after ${STEP_TIMEOUT_MS / 1000} s waiting for ${kinds.join('/')}`));
      }, STEP_TIMEOUT_MS);
      const look = () => {
        while (queue.length > 0) {
          const ev = queue.shift();
          if (kinds.includes(ev.kind)) {
            clearTimeout(timer);
            resolve(ev);
            return;
          }
          if (ev.kind === 'close' || ev.kind === 'error') {
            clearTimeout(timer);
            reject(new Error(ev.kind === 'close' ? `connection closed (${ev.code})` : String(ev.err)));
            return;
          }
        }
        waiter = look;
      };
      look();
    });
  };
}

async function expectEcho(next, sent, binary) {
  const ev = await next(['message']);
  if (ev.isBinary !== binary) {
    return `sent ${binary ? 'binary' : 'text'}, got ${ev.isBinary ? 'binary' : 'text'}`;
  }
  const expected = Buffer.isBuffer(sent) ? sent : Buffer.from(sent, 'utf8');
  if (!expected.equals(ev.data)) {
    return `echo differs (sent ${expected.length} bytes, got ${ev.data.length})`;
  }
  return null;
}

async function runClient(url) {
  const names = ['text', 'binary', 'large', 'fragmented', 'ping', 'subprotocol', 'close'];
  if (DEFLATE) names.unshift('deflate');
  const ws = new WebSocket(url, ['chat.v2', 'chat.v1'], {
    maxPayload: MAX_MESSAGE,
    perMessageDeflate: PER_MESSAGE_DEFLATE,
    handshakeTimeout: STEP_TIMEOUT_MS,
  });
  const next = watch(ws);
  try {
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
  } catch (err) {
    for (const name of names) console.log(`FAIL ${name}: connect failed: ${err.message}`);
    return 1;
  }
  const checks = {
    deflate: async () =>
      ws.extensions.includes('permessage-deflate') ? null : `permessage-deflate not negotiated (server answered ${JSON.stringify(ws.extensions)})`,
    text: async () => {
      const text = 'héllo wörld ✓ 日本語 🦀';
      ws.send(text);
      return expectEcho(next, text, false);
    },
    binary: async () => {
      const data = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      ws.send(data);
      return expectEcho(next, data, true);
    },
    large: async () => {
      const data = crypto.randomBytes(LARGE);
      ws.send(data);
      return expectEcho(next, data, true);
    },
    fragmented: async () => {
      const parts = ['fragment one, ', 'fragment twö, ', 'fragment three'];
      ws.send(parts[0], { fin: false });
      ws.send(parts[1], { fin: false });
      ws.send(parts[2], { fin: true });
      return expectEcho(next, parts.join(''), false);
    },
    ping: async () => {
      ws.ping('interop');
      const ev = await next(['pong']);
      const got = ev.data.toString();
      return got === 'interop' ? null : `pong payload ${JSON.stringify(got)}, expected "interop"`;
    },
    subprotocol: async () => (ws.protocol === 'chat.v2' ? null : `negotiated ${JSON.stringify(ws.protocol)}, expected "chat.v2"`),
    close: async () => {
      ws.close(4001, 'bye');
      const ev = await next(['close']);
      // ws reports 1006 when the connection ended without a close frame from the peer.
      if (ev.code === 1006) return 'no close frame received (abnormal closure)';
      return ev.code === 4001 ? null : `server answered close code ${ev.code}, expected 4001`;
    },
  };
  let failed = 0;
  for (const name of names) {
    let why;
    try {
      // A send on a closed socket is silently dropped: fail fast instead of timing out.
      why = ws.readyState === WebSocket.CLOSED ? 'connection already closed' : await checks[name]();
    } catch (err) {
      why = err.message;
    }
    if (why === null) {
      console.log(`ok ${name}`);
    } else {
      failed += 1;
      console.log(`FAIL ${name}: ${why}`);
    }
  }
  ws.terminate();
  return failed ? 1 : 0;
}

const [mode, url] = process.argv.slice(2);
if (mode === 'server') {
  runServer();
} else if (mode === 'client' && url) {
  runClient(url).then((code) => process.exit(code));
} else {
  process.stderr.write('usage: node_peer.js server | node_peer.js client URL\n');
  process.exit(2);
}
