#!/usr/bin/env python3
"""Interop peer built on Python's `websockets` (asyncio API).

    python_peer.py server         echo server on 127.0.0.1, port chosen by the OS
    python_peer.py client URL     runs the interop checks against an echo server

Server: prints `listening on 127.0.0.1:PORT` once bound, echoes text and binary messages,
picks subprotocol chat.v2 (else chat.v1) when offered, and answers the text `close-me` by
closing with 4002 "asked". It exits by itself after SERVER_LIFETIME seconds.

Client: prints `ok NAME` or `FAIL NAME: WHY` per check and exits 0 only if all pass.

With INTEROP_DEFLATE=1 both offer and accept permessage-deflate: the server prints
`extensions: VALUE` (its Sec-WebSocket-Extensions answer) per connection, and the client adds
the check `deflate` (the server accepted permessage-deflate).
"""

import asyncio
import os
import sys

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

MAX_MESSAGE = 64 * 1024 * 1024
LARGE = 16 * 1024 * 1024
STEP_TIMEOUT = 30.0
DEFLATE = os.environ.get("INTEROP_DEFLATE") == "1"
# `extensions: VALUE` per connection without deflate too (run.py --resume reads it).
LOG_EXTENSIONS = DEFLATE or os.environ.get("INTEROP_LOG_EXTENSIONS") == "1"
COMPRESSION = "deflate" if DEFLATE else None
SERVER_LIFETIME = 600.0
PREFERENCE = ("chat.v2", "chat.v1")


def choose_subprotocol(_connection, offered):
    for name in PREFERENCE:
        if name in offered:
            return name
    return None


async def echo(ws):
    if LOG_EXTENSIONS:
        print(f"extensions: {ws.response.headers.get('Sec-WebSocket-Extensions')}", flush=True)
    try:
        async for message in ws:
            if message == "close-me":
                await ws.close(4002, "asked")
                return
            await ws.send(message)
    except ConnectionClosed:
        pass


async def run_server():
    async with serve(
        echo,
        "127.0.0.1",
        0,
        select_subprotocol=choose_subprotocol,
        compression=COMPRESSION,
        max_size=MAX_MESSAGE,
        ping_interval=None,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"listening on 127.0.0.1:{port}", flush=True)
        try:
            await asyncio.wait_for(server.serve_forever(), SERVER_LIFETIME)
        except asyncio.TimeoutError:
            print("python peer: lifetime reached, exiting", file=sys.stderr, flush=True)


async def expect_echo(ws, sent):
    got = await asyncio.wait_for(ws.recv(), STEP_TIMEOUT)
    if type(got) is not type(sent):
        return f"sent {type(sent).__name__}, got {type(got).__name__}"
    if got != sent:
        return f"echo differs (sent {len(sent)}, got {len(got)} {'chars' if isinstance(got, str) else 'bytes'})"
    return None


async def check_text(ws):
    text = "héllo wörld ✓ 日本語 🦀"
    await ws.send(text)
    return await expect_echo(ws, text)


async def check_binary(ws):
    await ws.send(bytes(range(256)))
    return await expect_echo(ws, bytes(range(256)))


async def check_large(ws):
    payload = os.urandom(LARGE)
    await asyncio.wait_for(ws.send(payload), STEP_TIMEOUT)
    return await expect_echo(ws, payload)


async def check_fragmented(ws):
    parts = ["fragment one, ", "fragment twö, ", "fragment three"]
    await asyncio.wait_for(ws.send(parts), STEP_TIMEOUT)
    return await expect_echo(ws, "".join(parts))


async def check_ping(ws):
    # The waiter resolves only on a pong that carries this exact payload.
    waiter = await ws.ping(b"interop")
    await asyncio.wait_for(waiter, STEP_TIMEOUT)
    return None


async def check_subprotocol(ws):
    if ws.subprotocol != "chat.v2":
        return f"negotiated {ws.subprotocol!r}, expected 'chat.v2'"
    return None


async def check_deflate(ws):
    answer = ws.response.headers.get("Sec-WebSocket-Extensions") or ""
    if "permessage-deflate" not in answer:
        return f"permessage-deflate not negotiated (server answered {answer!r})"
    return None


async def check_close(ws):
    await asyncio.wait_for(ws.close(4001, "bye"), STEP_TIMEOUT)
    await asyncio.wait_for(ws.wait_closed(), STEP_TIMEOUT)
    rcvd = ws.protocol.close_rcvd
    if rcvd is None:
        return "no close frame received (abnormal closure)"
    if ws.protocol.close_rcvd_then_sent is not False:
        return "the close handshake did not complete in order"
    if rcvd.code != 4001:
        return f"server answered close code {rcvd.code}, expected 4001"
    return None


async def run_client(url):
    checks = [
        ("text", check_text),
        ("binary", check_binary),
        ("large", check_large),
        ("fragmented", check_fragmented),
        ("ping", check_ping),
        ("subprotocol", check_subprotocol),
        ("close", check_close),
    ]
    if DEFLATE:
        checks.insert(0, ("deflate", check_deflate))
    failed = 0
    try:
        ws = await connect(
            url,
            subprotocols=["chat.v2", "chat.v1"],
            compression=COMPRESSION,
            max_size=MAX_MESSAGE,
            ping_interval=None,
            open_timeout=STEP_TIMEOUT,
            close_timeout=STEP_TIMEOUT,
        )
    except Exception as exc:  # noqa: BLE001 - any failure to connect fails every check
        for name, _ in checks:
            print(f"FAIL {name}: connect failed: {exc!r}", flush=True)
        return 1
    for name, check in checks:
        try:
            why = await check(ws)
        except asyncio.TimeoutError:
            why = f"timed out after {STEP_TIMEOUT:.0f} s"
        except Exception as exc:  # noqa: BLE001 - report and go on with the next check
            why = repr(exc)
        if why is None:
            print(f"ok {name}", flush=True)
        else:
            failed += 1
            print(f"FAIL {name}: {why}", flush=True)
    if ws.state.name != "CLOSED":
        ws.transport.abort()
    return 1 if failed else 0


def main(argv):
    if len(argv) >= 2 and argv[1] == "server":
        asyncio.run(run_server())
        return 0
    if len(argv) == 3 and argv[1] == "client":
        return asyncio.run(run_client(argv[2]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
