#!/usr/bin/env python3
"""Summarises Autobahn|Testsuite reports (the `index.json` files wstest writes).

    python3 interop/autobahn/report.py [--expect N] [PATH ...]     (default: target/autobahn/server and .../client)

PATH is an index.json or a directory searched for index.json files. The role (server or
client) is the nearest `server` or `client` directory above the file. For each agent and role
it prints the counts of OK, NON-STRICT, INFORMATIONAL, UNIMPLEMENTED and FAILED per case group
(the first number of the case id), the cases that are not OK with their descriptions, and a
final line per agent and role:

    autobahn tether-tokio server: 298 OK, 0 NON-STRICT, 3 INFORMATIONAL, 0 UNIMPLEMENTED, 0 FAILED of 301

Exit status 1 on any FAILED, NON-STRICT or UNIMPLEMENTED case, on a close behaviour other than
OK (an INFORMATIONAL close behaviour is accepted only for an INFORMATIONAL case), on a case
result wstest does not name, when fewer than N cases were reported (--expect), or when no
report was found.
"""

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KINDS = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")
BAD = ("NON-STRICT", "UNIMPLEMENTED", "FAILED")


def case_key(case_id):
    return tuple(int(p) if p.isdigit() else 0 for p in case_id.split("."))


def find_indexes(paths):
    """index.json files in the order of paths; within a directory agent by agent (the
    directory holding index.json), server role before client role."""
    found = []
    for path in paths:
        if os.path.isfile(path):
            found.append(os.path.abspath(path))
        elif os.path.isdir(path):
            here = []
            for dirpath, _dirs, files in os.walk(path):
                if "index.json" in files:
                    here.append(os.path.abspath(os.path.join(dirpath, "index.json")))
            here.sort(key=lambda p: (os.path.basename(os.path.dirname(p)), role_of(p) != "server", p))
            found.extend(here)
    unique = []
    for p in found:
        if p not in unique:
            unique.append(p)
    return unique


def role_of(index_path):
    parts = os.path.abspath(index_path).split(os.sep)
    for part in reversed(parts[:-1]):
        if part in ("server", "client"):
            return part
    return "?"


def case_details(base_dir, entry):
    """Description and results from the case's own report file (best effort)."""
    name = entry.get("reportfile")
    if not name:
        return {}
    try:
        with open(os.path.join(base_dir, name), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def one_line(text, limit=160):
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def summarise(index_path, expect):
    """Prints the details of one index.json. Returns ([summary lines], ok)."""
    with open(index_path, encoding="utf-8") as f:
        index = json.load(f)
    base_dir = os.path.dirname(index_path)
    role = role_of(index_path)
    summaries = []
    all_ok = True
    for agent in sorted(index):
        cases = index[agent]
        groups = {}
        totals = dict.fromkeys(KINDS, 0)
        not_ok = []
        agent_ok = True
        for case_id in sorted(cases, key=case_key):
            entry = cases[case_id]
            behavior = entry.get("behavior", "?")
            close = entry.get("behaviorClose", "?")
            kind = behavior if behavior in KINDS else "FAILED"
            group = case_id.split(".")[0]
            groups.setdefault(group, dict.fromkeys(KINDS, 0))[kind] += 1
            totals[kind] += 1
            close_ok = close == "OK" or (close == "INFORMATIONAL" and behavior == "INFORMATIONAL")
            bad = kind in BAD or behavior not in KINDS or not close_ok
            if bad:
                agent_ok = False
            if behavior != "OK" or close != "OK":
                not_ok.append((case_id, behavior, close, bad, entry))
        print(f"== autobahn {agent} {role}  ({os.path.relpath(index_path, ROOT)})")
        print(f"   {'group':<6}" + "".join(f"{k:>15}" for k in KINDS))
        for group in sorted(groups, key=lambda g: case_key(g)):
            print(f"   {group:<6}" + "".join(f"{groups[group][k]:>15}" for k in KINDS))
        for case_id, behavior, close, bad, entry in not_ok:
            details = case_details(base_dir, entry)
            print(f"   {'FAIL' if bad else 'note'} {case_id}: {behavior} (close: {close}, remote close code: {entry.get('remoteCloseCode')})")
            if details.get("description"):
                print(f"        case: {one_line(details['description'])}")
            if details.get("result"):
                print(f"        result: {one_line(details['result'])}")
            if close != "OK" and details.get("resultClose"):
                print(f"        close: {one_line(details['resultClose'])}")
        total = len(cases)
        if expect and total < expect:
            agent_ok = False
            print(f"   FAIL only {total} cases reported, expected {expect}")
        all_ok = all_ok and agent_ok
        summaries.append(
            f"autobahn {agent} {role}: "
            + ", ".join(f"{totals[k]} {k}" for k in KINDS)
            + f" of {total}"
            + ("" if agent_ok else "  <- not conformant")
        )
    return summaries, all_ok


def report(paths, expect=0):
    """Prints every report under paths. Returns True if all are conformant."""
    indexes = find_indexes(paths)
    if not indexes:
        print("autobahn: no index.json found under " + ", ".join(paths))
        return False
    summaries = []
    ok = True
    for index_path in indexes:
        try:
            lines, good = summarise(index_path, expect)
        except (OSError, ValueError) as exc:
            lines, good = [f"autobahn: cannot read {index_path}: {exc}"], False
        summaries.extend(lines)
        ok = ok and good
    print()
    for line in summaries:
        print(line)
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "paths",
        nargs="*",
        default=[os.path.join(ROOT, "target", "autobahn", role) for role in ("server", "client")],
    )
    ap.add_argument("--expect", type=int, default=0, help="minimum number of cases per agent")
    args = ap.parse_args()
    return 0 if report(args.paths, args.expect) else 1


if __name__ == "__main__":
    sys.exit(main())
