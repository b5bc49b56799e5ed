#!/usr/bin/env bash
# Autobahn|Testsuite: every adapter as server (fuzzingclient) and as client (fuzzingserver),
# permessage-deflate on, cases 1 to 10 and 36 of the compression cases 12.*/13.* (--full: all
# 517); installs wstest under target/interop/ first (see interop/autobahn/run.py).
# Reports: target/autobahn/{server,client}/<agent>/index.html
#   bash scripts/autobahn.sh
#   bash scripts/autobahn.sh --adapters std --roles server --cases '6.*'
#   bash scripts/autobahn.sh --full
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-peers.sh autobahn
exec python3 interop/autobahn/run.py "$@"
