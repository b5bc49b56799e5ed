#!/usr/bin/env bash
# Interop tests: each adapter's examples against Python `websockets` and Node `ws`, in both
# roles (installs the peers under target/interop/ first; see interop/run.py for options).
#   bash scripts/interop.sh
#   bash scripts/interop.sh --adapters tokio --no-build
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-peers.sh py node
python3 interop/run.py "$@"
# Again with permessage-deflate on at both ends (the examples are built by the first pass).
python3 interop/run.py --deflate --no-build "$@"
# With --resume against Python websockets: tether-resume is declined and everything works as
# plain WebSocket.
python3 interop/run.py --resume --no-build --peers python "$@"
