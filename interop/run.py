#!/usr/bin/env python3
"""Interop runner: tether's adapters against Python `websockets` and Node `ws`.

    python3 interop/run.py [--adapters tokio,smol,std] [--peers python,node]
                           [--target-dir DIR] [--no-build] [--deflate] [--resume]

For each adapter:
  server role: the adapter's `echo_server` against the Python and Node clients
               (interop/peers/*_peer.* client URL: text binary large fragmented ping
               subprotocol close);
  client role: the adapter's `interop_client` against the Python and Node echo servers, run
               twice: plainly (the same checks) and with --expect-server-close (counted for
               its `server-close` check: the peer closes with 4002 "asked" on `close-me`).
--deflate: permessage-deflate on at both ends (the examples' `--deflate`, the peers'
INTEROP_DEFLATE=1), with one more check, `deflate`: it was negotiated (the peer client says so
in the server role; the peer server's answer is read from its log in the client role).
--resume: the examples' `--resume` (tether-resume, docs/resume.md) against peers that do not
know it: every check passes as plain WebSocket, plus `resume-fallback` in the client role (the
peer server's answers name no tether-resume: the offer was declined, not half-taken).

Prints one line per (adapter, role, peer), then `N passed, M failed` (one unit per check);
exits 1 if anything failed. Install the peers first: bash scripts/install-peers.sh
"""

import argparse
import os
import re
import shutil
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

PEER_CHECKS = ["text", "binary", "large", "fragmented", "ping", "subprotocol", "close"]
CLIENT_CHECKS = PEER_CHECKS + ["server-close"]
RUN_TIMEOUT = 120.0
LISTEN_TIMEOUT = 30.0
RESULT_RE = re.compile(r"^(ok|FAIL) ([A-Za-z0-9_.-]+)(?::\s*(.*))?$")

PEERS = {
    "python": {
        "script": os.path.join(common.ROOT, "interop", "peers", "python_peer.py"),
        "interpreter": os.path.join(common.INTEROP_DIR, "py", "bin", "python"),
    },
    "node": {
        "script": os.path.join(common.ROOT, "interop", "peers", "node_peer.js"),
        "interpreter": "node",
    },
}


DEFLATE = False  # --deflate
RESUME = False  # --resume


def resume_flag():
    return ["--resume"] if RESUME else []


def peer_env():
    env = dict(os.environ)
    if DEFLATE:
        env["INTEROP_DEFLATE"] = "1"
    if RESUME:
        env["INTEROP_LOG_EXTENSIONS"] = "1"
    node_modules = os.path.join(common.INTEROP_DIR, "node", "node_modules")
    env["NODE_PATH"] = node_modules + (os.pathsep + env["NODE_PATH"] if env.get("NODE_PATH") else "")
    env.setdefault("RUST_BACKTRACE", "1")
    return env


def check_peers(names):
    problems = []
    if "python" in names:
        py = PEERS["python"]["interpreter"]
        if not os.access(py, os.X_OK):
            problems.append(f"python peer: {py} is missing (run: bash scripts/install-peers.sh py)")
    if "node" in names:
        if shutil.which("node") is None:
            problems.append("node peer: `node` is not on PATH (Node 18 or later is needed)")
        ws = os.path.join(common.INTEROP_DIR, "node", "node_modules", "ws", "package.json")
        if not os.path.exists(ws):
            problems.append(f"node peer: {ws} is missing (run: bash scripts/install-peers.sh node)")
    return problems


def score(output, exit_code, expected):
    """Maps a checker's output to [(check, ok, why)] covering every expected check."""
    results = {}
    order = []
    for line in output.splitlines():
        m = RESULT_RE.match(line.strip())
        if not m:
            continue
        name = m.group(2)
        if name not in results:
            order.append(name)
        results[name] = (m.group(1) == "ok", m.group(3) or "")
    rows = []
    for name in expected + [n for n in order if n not in expected]:
        if name in results:
            ok, why = results[name]
            rows.append((name, ok, why))
        else:
            how = "timed out" if exit_code is None else f"exit code {exit_code}"
            rows.append((name, False, f"no result ({how})"))
    if exit_code != 0 and all(ok for _, ok, _ in rows):
        how = "timed out" if exit_code is None else f"exit code {exit_code}"
        rows.append(("exit-status", False, f"every check passed but the checker ended with {how}"))
    return rows


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def line(self, crate, role, peer, rows, note=None):
        ok = sum(1 for _, good, _ in rows if good)
        self.passed += ok
        self.failed += len(rows) - ok
        marks = " ".join(f"{name}:{'ok' if good else 'FAIL'}" for name, good, _ in rows)
        print(f"{crate:<13} {role:<6} {peer:<6} {ok}/{len(rows)}  {marks}", flush=True)
        reasons = {}
        for name, good, why in rows:
            if not good:
                reasons.setdefault(why, []).append(name)
        for why, names in reasons.items():
            print(f"    FAIL {', '.join(names)}: {why}", flush=True)
        if note:
            for text in note.splitlines():
                print(f"    | {text}", flush=True)


def all_failed(checks, why):
    return [(name, False, why) for name in checks]


def server_role(children, tally, crate, target_dir, peers, logs):
    """The adapter's echo_server against each peer's client."""
    binary = common.example(target_dir, crate, "echo_server")
    if binary is None:
        for peer in peers:
            tally.line(crate, "server", peer, all_failed(PEER_CHECKS, "echo_server example not built"))
        return
    cmd = [binary, "127.0.0.1:0", "--subprotocol", "chat.v2", "--subprotocol", "chat.v1"]
    if DEFLATE:
        cmd.append("--deflate")
    cmd += resume_flag()
    server = children.start(f"{crate} echo_server", cmd, os.path.join(logs, f"{crate}-echo_server.log"), env=peer_env())
    try:
        addr = server.wait_listening(LISTEN_TIMEOUT)
        if addr is None:
            why = "echo_server did not print `listening on ADDR`" + ("" if server.alive() else " (it exited)")
            for peer in peers:
                tally.line(crate, "server", peer, all_failed(PEER_CHECKS, why), note=server.log_tail())
            return
        for peer in peers:
            spec = PEERS[peer]
            cmd = [spec["interpreter"], spec["script"], "client", f"ws://{addr}/"]
            code, out = common.run_bounded(
                cmd, RUN_TIMEOUT, env=peer_env(), log_path=os.path.join(logs, f"{crate}-server-{peer}-client.log")
            )
            rows = score(out, code, (["deflate"] if DEFLATE else []) + PEER_CHECKS)
            note = None
            if not server.alive():
                rows.append(("server-alive", False, "echo_server exited during the run"))
                note = server.log_tail()
            tally.line(crate, "server", peer, rows, note=note)
    finally:
        children.stop(server)


def client_role(children, tally, crate, target_dir, peers, logs):
    """The adapter's interop_client against each peer's echo server."""
    binary = common.example(target_dir, crate, "interop_client")
    for peer in peers:
        if binary is None:
            tally.line(crate, "client", peer, all_failed(CLIENT_CHECKS, "interop_client example not built"))
            continue
        spec = PEERS[peer]
        server = children.start(
            f"{peer} server",
            [spec["interpreter"], spec["script"], "server"],
            os.path.join(logs, f"{crate}-client-{peer}-server.log"),
            env=peer_env(),
        )
        try:
            addr = server.wait_listening(LISTEN_TIMEOUT)
            if addr is None:
                tally.line(crate, "client", peer, all_failed(CLIENT_CHECKS, f"the {peer} peer server did not start"), note=server.log_tail())
                continue
            # Two runs: the plain one ends with the client's own close (`close`); with
            # --expect-server-close the last check is `server-close` instead (the peer closes
            # with 4002 on `close-me`). The second run counts only for `server-close`, unless
            # one of its other checks fails.
            rows = []
            notes = []
            for extra, expected in (([], PEER_CHECKS), (["--expect-server-close"], PEER_CHECKS[:-1] + ["server-close"])):
                mode = "server-close" if extra else "plain"
                client_log = os.path.join(logs, f"{crate}-interop_client-{peer}-{mode}.log")
                code, out = common.run_bounded(
                    [binary, f"ws://{addr}/"] + extra + (["--deflate"] if DEFLATE else []) + resume_flag(),
                    RUN_TIMEOUT,
                    env=peer_env(),
                    log_path=client_log,
                )
                got = score(out, code, expected)
                if extra:
                    got = [r for r in got if r[0] == "server-close" or not r[1]]
                    got = [(n if n == "server-close" else f"{n}(2nd run)", ok, why) for n, ok, why in got]
                rows += got
                if not all(ok for _, ok, _ in got):
                    try:
                        with open(client_log, encoding="utf-8", errors="replace") as f:
                            tail = "\n".join(f.read().splitlines()[-20:])
                        if tail:
                            notes.append(f"interop_client {' '.join(extra)} stderr:\n{tail}")
                    except OSError:
                        pass
            if DEFLATE:
                answers = [l for l in server.log_text().splitlines() if l.startswith("extensions: ")]
                agreed = bool(answers) and all("permessage-deflate" in l for l in answers)
                rows.insert(0, ("deflate", agreed, f"the {peer} server answered {answers[:3]}"))
            if RESUME:
                answers = [l for l in server.log_text().splitlines() if l.startswith("extensions: ")]
                declined = bool(answers) and not any("tether-resume" in l for l in answers)
                rows.insert(0, ("resume-fallback", declined, f"the {peer} server answered {answers[:3]}"))
            note = "\n".join(notes) or None
            tally.line(crate, "client", peer, rows, note=note)
        finally:
            children.stop(server)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--adapters", default="", help="comma-separated: tokio,smol,std (default: all)")
    ap.add_argument("--peers", default="python,node", help="comma-separated: python,node (default: both)")
    ap.add_argument("--roles", default="server,client", help="comma-separated: server,client (default: both)")
    ap.add_argument("--target-dir", default=common.default_target_dir(), help="cargo target directory")
    ap.add_argument("--no-build", action="store_true", help="use the examples built by an earlier run")
    ap.add_argument("--deflate", action="store_true", help="permessage-deflate on at both ends")
    ap.add_argument("--resume", action="store_true", help="the examples' --resume against peers without it")
    args = ap.parse_args()
    global DEFLATE, RESUME
    DEFLATE = args.deflate
    RESUME = args.resume

    crates = common.parse_adapters(args.adapters)
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    for p in peers:
        if p not in PEERS:
            raise SystemExit(f"unknown peer {p!r} (expected python or node)")
    roles = [r.strip() for r in args.roles.split(",") if r.strip()]
    for r in roles:
        if r not in ("server", "client"):
            raise SystemExit(f"unknown role {r!r} (expected server or client)")
    target_dir = os.path.abspath(args.target_dir)
    problems = check_peers(peers)
    if problems:
        for p in problems:
            print(p, file=sys.stderr)
        return 2

    started = time.monotonic()
    built = common.build_examples(crates, target_dir, args.no_build)
    logs = os.path.join(common.INTEROP_DIR, "logs")
    os.makedirs(logs, exist_ok=True)
    children = common.Children()
    tally = Tally()
    try:
        for crate in crates:
            if built[crate] is not None:
                for role, checks in (("server", PEER_CHECKS), ("client", CLIENT_CHECKS)):
                    if role in roles:
                        for peer in peers:
                            tally.line(crate, role, peer, all_failed(checks, built[crate]))
                continue
            if "server" in roles:
                server_role(children, tally, crate, target_dir, peers, logs)
            if "client" in roles:
                client_role(children, tally, crate, target_dir, peers, logs)
    finally:
        children.stop_all()
    print(f"(logs in {os.path.relpath(logs, common.ROOT)}; {time.monotonic() - started:.1f} s)", flush=True)
    print(f"{tally.passed} passed, {tally.failed} failed", flush=True)
    return 1 if tally.failed else 0


if __name__ == "__main__":
    sys.exit(main())
