// Bun's built-in WebSocket server (uWebSockets inside) as an echo server for tether-bench: an
// outside reference in the echo and memory scenarios (see benches/README.md). Like the Rust
// servers (benches/src/server.rs) it binds 127.0.0.1 port 0, prints `listening on ADDR`, sends
// every message back as it came (text as text, binary as binary) and exits when its standard
// input closes. Limits as the Rust servers are configured: messages up to 64 MiB.

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch(req, srv) {
    if (srv.upgrade(req)) {
      return undefined;
    }
    return new Response("WebSocket only\n", { status: 400 });
  },
  websocket: {
    maxPayloadLength: 64 << 20,
    // The longest idle time Bun allows (seconds): no run here keeps a connection that long.
    idleTimeout: 960,
    perMessageDeflate: false,
    message(ws, message) {
      // A string for a text message, a Buffer for a binary one: `send` keeps the kind.
      ws.send(message);
    },
  },
});

process.stdout.write(`listening on ${server.hostname}:${server.port}\n`);

// The parent closes our standard input when it is done with us (or dies).
(async () => {
  const reader = Bun.stdin.stream().getReader();
  while (!(await reader.read()).done) {
    // Nothing is ever written to us; read until the end.
  }
  process.exit(0);
})();
