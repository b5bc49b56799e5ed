#!/usr/bin/env bash
# Server instructions per echo, counted by callgrind (repeatable on a shared machine, unlike
# wall time): `bash benches/scripts/callgrind_echo.sh LIB [INFLIGHT] [SIZE]`, LIB as in
# `tether-bench --serve` (tether-tokio, tether-smol, tether-std, fastwebsockets, ...).
# Runs the server under callgrind twice (K and 2K echoes of SIZE bytes, default 20, from one raw client,
# INFLIGHT at a time) and prints the difference divided by K, so setup costs cancel out.
set -euo pipefail
cd "$(dirname "$0")/../.."
lib="$1"; inflight="${2:-1}"; size="${3:-20}"; k=2000
cargo build -q --release -p tether-bench
bin="${CARGO_TARGET_DIR:-target}/release/tether-bench"
dir=$(mktemp -d)
run() {
  local n=$1 out="$dir/cg.$1"
  mkfifo "$dir/stdin.$n"
  valgrind --tool=callgrind --callgrind-out-file="$out.%p" "$bin" \
    --serve "$lib" <"$dir/stdin.$n" >"$dir/serve.$n" 2>/dev/null &
  local pid=$!
  exec 3>"$dir/stdin.$n"   # the server exits when its stdin closes
  local addr=""
  for _ in $(seq 1 300); do
    addr=$(grep -oE "127\.0\.0\.1:[0-9]+" "$dir/serve.$n" | head -1 || true)
    [ -n "$addr" ] && break
    sleep 0.1
  done
  python3 benches/scripts/echo_client.py "$addr" "$n" "$inflight" "$size"
  exec 3>&-
  wait "$pid"
  cat "$out".* | awk '/^totals:/ {s += $2} END {print s}'
}
a=$(run $k); b=$(run $((2 * k)))
echo "$lib: $(( (b - a) / k )) instructions per echo ($size B, $inflight in flight)"
rm -rf "$dir"
