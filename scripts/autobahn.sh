#!/usr/bin/env bash
# Autobahn|Testsuite: every adapter as server (fuzzingclient) and as client (fuzzingserver),
# cases 1 to 10; installs wstest under target/interop/ first (see interop/autobahn/run.py).
# Reports: target/autobahn/{server,client}/<agent>/index.html
#   bash scripts/autobahn.sh
#   bash scripts/autobahn.sh --adapters std --roles server --cases '6.*'
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-peers.sh autobahn
exec python3 interop/autobahn/run.py "$@"
