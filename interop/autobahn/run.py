#!/usr/bin/env python3
"""Autobahn|Testsuite runs against tether's adapters.

    python3 interop/autobahn/run.py [--adapters tokio,smol,std] [--roles server,client]
                                    [--target-dir DIR] [--no-build] [--cases 1.*,2.1]
                                    [--timeout SECS] [--reference] [--full]

Both roles run with permessage-deflate on (`--deflate`). The default cases are 1.* to 10.* and
36 of the 216 compression cases (12.*, 13.*); --full runs all 517 (about 12 more minutes per
adapter and role).

server role: `wstest -m fuzzingclient` against the adapter's `echo_server` (agent = crate
             name); report in target/autobahn/server/<agent>/.
client role: `wstest -m fuzzingserver` on a free loopback port (web UI disabled) and the
             adapter's `autobahn_client ws://127.0.0.1:PORT`; report in
             target/autobahn/client/<agent>/.
--reference adds the Python `websockets` echo peer as a server-role agent (a sanity check of
the harness; report in target/autobahn/reference/, not counted in the exit status). The spec templates are interop/autobahn/fuzzingclient.json and
fuzzingserver.json (cases, exclusions, options); this runner fills in the URL, the agent and
the output directory. wstest's exit code means nothing: results come from index.json, which
report.py summarises (its exit status is this runner's). Install wstest first:
bash scripts/install-peers.sh autobahn
"""

import argparse
import json
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
import common  # noqa: E402
import report  # noqa: E402

DEFAULT_WSTEST = os.path.join(common.INTEROP_DIR, "wstest-venv", "bin", "wstest")
FULL_RUN_CASES = 517  # cases 1.* to 10.* (301) and the permessage-deflate cases 12.* and 13.* (216)
# The default run: every case of 1.* to 10.*, and of each permessage-deflate group (12.1-12.5,
# 13.1-13.7) the 64-byte and 4 KiB messages and one fragmented series (36 cases). All 216 take
# about 12 minutes per adapter and role in wstest, too long for CI: --full runs them.
# Patterns match case ids as prefixes: "12.*.2" does not reach 12.1.2x (there is none).
DEFAULT_CASES = [f"{n}.*" for n in range(1, 11)] + [
    f"{g}.*.{c}" for g in (12, 13) for c in (2, 5, 13)
]
DEFAULT_RUN_CASES = 337
# The examples run with permessage-deflate on, so that 12.* and 13.* can negotiate it.
DEFLATE = ["--deflate"]


def load_spec(name):
    with open(os.path.join(HERE, name), encoding="utf-8") as f:
        return json.load(f)


def apply_cases(spec, cases, exclude):
    if cases:
        spec["cases"] = cases
    if exclude is not None:
        spec["exclude-cases"] = exclude


def write_spec(spec, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(spec, f, indent=2)
    return path


def fresh_dir(path):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def index_has(outdir, agent):
    try:
        with open(os.path.join(outdir, "index.json"), encoding="utf-8") as f:
            return agent in json.load(f)
    except (OSError, ValueError):
        return False


def server_role(children, agent, server_cmd, args, logs, base=None):
    """fuzzingclient against an echo server started from server_cmd. Returns an error or None."""
    outdir = fresh_dir(os.path.join(base or args.report_dir, "server", agent))
    server = children.start(f"{agent} echo server", server_cmd, os.path.join(logs, f"{agent}-server-echo.log"))
    try:
        addr = server.wait_listening(30.0)
        if addr is None:
            return f"{agent}: the echo server did not print `listening on ADDR`\n{server.log_tail()}"
        spec = load_spec("fuzzingclient.json")
        apply_cases(spec, args.cases, args.exclude)
        spec["outdir"] = outdir
        spec["servers"] = [{"agent": agent, "url": f"ws://{addr}"}]
        spec_path = write_spec(spec, os.path.join(args.report_dir, "specs", f"fuzzingclient-{agent}.json"))
        started = time.monotonic()
        code, _ = common.run_bounded(
            [args.wstest, "-m", "fuzzingclient", "-s", spec_path],
            args.timeout,
            log_path=os.path.join(logs, f"{agent}-server-wstest.log"),
        )
        took = time.monotonic() - started
        common.log(f"autobahn {agent} server: wstest fuzzingclient ran {took:.1f} s")
        problems = []
        if code is None:
            problems.append(f"wstest fuzzingclient timed out after {args.timeout:.0f} s")
        if not server.alive():
            problems.append("the echo server exited during the run:\n" + server.log_tail())
        if not index_has(outdir, agent):
            problems.append(f"no report for {agent} in {outdir}/index.json")
        return "\n".join(f"{agent} server: {p}" for p in problems) or None
    finally:
        children.stop(server)


def start_fuzzingserver(children, agent, spec, args, logs):
    """Starts wstest fuzzingserver on a free port. Returns (child, port) or (None, error).

    The port is picked by binding port 0 and releasing it, so another process may take it
    first: then wstest cannot listen, and this tries again with another port (5 attempts).
    """
    why = ""
    for attempt in range(1, 6):
        port = common.free_port()
        spec["url"] = f"ws://127.0.0.1:{port}"
        spec_path = write_spec(spec, os.path.join(args.report_dir, "specs", f"fuzzingserver-{agent}.json"))
        # --webport 0: no web UI (it would listen on port 8080 on every interface).
        wstest = children.start(
            f"{agent} wstest fuzzingserver",
            [args.wstest, "-m", "fuzzingserver", "-s", spec_path, "--webport", "0"],
            os.path.join(logs, f"{agent}-client-wstest.log"),
        )
        deadline = time.monotonic() + 60.0
        while time.monotonic() < deadline:
            if not wstest.alive() or "CannotListenError" in wstest.log_text():
                why = f"wstest fuzzingserver could not listen on port {port}:\n{wstest.log_tail()}"
                break
            mine = common.listening_on_any(port)
            if mine or (mine is None and common.wait_for_port(port, 0.5)):
                return wstest, port
            time.sleep(0.1)
        else:
            why = f"wstest fuzzingserver did not listen on port {port} within 60 s:\n{wstest.log_tail()}"
        children.stop(wstest)
        common.log(f"autobahn {agent} client: attempt {attempt}: {why.splitlines()[0]}")
    return None, why


def client_role(children, agent, client_bin, args, logs):
    """fuzzingserver with the adapter's autobahn_client. Returns an error or None."""
    outdir = fresh_dir(os.path.join(args.report_dir, "client", agent))
    spec = load_spec("fuzzingserver.json")
    apply_cases(spec, args.cases, args.exclude)
    spec["outdir"] = outdir
    wstest, port = start_fuzzingserver(children, agent, spec, args, logs)
    if wstest is None:
        return f"{agent} client: {port}"
    try:
        started = time.monotonic()
        code, _ = common.run_bounded(
            [client_bin, f"ws://127.0.0.1:{port}", *DEFLATE],
            args.timeout,
            log_path=os.path.join(logs, f"{agent}-client-autobahn_client.log"),
        )
        took = time.monotonic() - started
        common.log(f"autobahn {agent} client: autobahn_client ran {took:.1f} s (exit {code})")
        problems = []
        if code is None:
            problems.append(f"autobahn_client timed out after {args.timeout:.0f} s")
        elif code != 0:
            problems.append(f"autobahn_client exited with {code}")
        if not index_has(outdir, agent):
            problems.append(f"no report for {agent} in {outdir}/index.json")
        return "\n".join(f"{agent} client: {p}" for p in problems) or None
    finally:
        children.stop(wstest)


def split_list(text):
    return [item.strip() for item in text.split(",") if item.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--adapters", default="", help="comma-separated: tokio,smol,std (default: all)")
    ap.add_argument("--roles", default="server,client", help="comma-separated: server,client (default: both)")
    ap.add_argument("--target-dir", default=common.default_target_dir(), help="cargo target directory")
    ap.add_argument("--no-build", action="store_true", help="use the examples built by an earlier run")
    ap.add_argument("--cases", default="", help="comma-separated case patterns (default: 1.*-10.* and 36 of 12.*/13.*)")
    ap.add_argument("--full", action="store_true", help="every case of the spec (517, 12.* and 13.* whole)")
    ap.add_argument("--exclude", default=None, help="comma-separated patterns to exclude (default: the spec's, none)")
    ap.add_argument("--timeout", type=float, default=600.0, help="bound of each wstest run, seconds (default 600)")
    ap.add_argument("--reference", action="store_true", help="also run the Python websockets echo peer (server role)")
    ap.add_argument("--report-dir", default=os.path.join(common.ROOT, "target", "autobahn"))
    ap.add_argument("--wstest", default=os.environ.get("WSTEST", DEFAULT_WSTEST), help="path of wstest")
    args = ap.parse_args()

    crates = common.parse_adapters(args.adapters)
    roles = split_list(args.roles)
    for r in roles:
        if r not in ("server", "client"):
            raise SystemExit(f"unknown role {r!r} (expected server or client)")
    args.cases = split_list(args.cases)
    default_run = not args.cases and args.exclude is None and not args.full
    if default_run:
        args.cases = list(DEFAULT_CASES)
    args.exclude = split_list(args.exclude) if args.exclude is not None else None
    args.report_dir = os.path.abspath(args.report_dir)
    target_dir = os.path.abspath(args.target_dir)
    if not os.access(args.wstest, os.X_OK):
        print(f"wstest not found at {args.wstest} (run: bash scripts/install-peers.sh autobahn)", file=sys.stderr)
        return 2

    started = time.monotonic()
    built = common.build_examples(crates, target_dir, args.no_build)
    logs = os.path.join(args.report_dir, "logs")
    os.makedirs(logs, exist_ok=True)
    children = common.Children()
    errors = []
    ran = []
    reference = []
    try:
        if args.reference and "server" in roles:
            py = os.path.join(common.INTEROP_DIR, "py", "bin", "python")
            peer = os.path.join(common.ROOT, "interop", "peers", "python_peer.py")
            base = os.path.join(args.report_dir, "reference")
            err = server_role(children, "python-websockets", [py, peer, "server"], args, logs, base)
            if err:
                print("autobahn reference error: " + err)
            reference.append(os.path.join(base, "server", "python-websockets"))
        for crate in crates:
            if built[crate] is not None:
                errors.append(f"{crate}: {built[crate]}")
                continue
            if "server" in roles:
                echo = common.example(target_dir, crate, "echo_server")
                if echo is None:
                    errors.append(f"{crate} server: echo_server example not built")
                else:
                    err = server_role(children, crate, [echo, "127.0.0.1:0", *DEFLATE], args, logs)
                    errors += [err] if err else []
                    ran.append(os.path.join(args.report_dir, "server", crate))
            if "client" in roles:
                client = common.example(target_dir, crate, "autobahn_client")
                if client is None:
                    errors.append(f"{crate} client: autobahn_client example not built")
                else:
                    err = client_role(children, crate, client, args, logs)
                    errors += [err] if err else []
                    ran.append(os.path.join(args.report_dir, "client", crate))
    finally:
        children.stop_all()

    full = args.full and not args.cases and args.exclude is None
    if reference:
        print("reference (does not count):")
        report.report([d for d in reference if os.path.isdir(d)], 0)
        print()
    expect = FULL_RUN_CASES if full else DEFAULT_RUN_CASES if default_run else 0
    ok = report.report([d for d in ran if os.path.isdir(d)], expect) if ran else False
    for err in errors:
        print("autobahn error: " + err)
    print(f"(reports in {os.path.relpath(args.report_dir, common.ROOT)}; {time.monotonic() - started:.1f} s)")
    return 0 if ok and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
