#!/usr/bin/env bash
# Runs every test of the project, installing what it needs itself (under target/interop/):
#   bash scripts/test.sh
# Parts can be skipped while iterating: SKIP="fuzz autobahn" bash scripts/test.sh
# FUZZ_SECONDS sets how long each fuzz target runs (default 30).
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS="${FUZZ_SECONDS:-30}"
SKIP="${SKIP:-}"

step() { printf '\n==> %s\n' "$*"; }
skipped() { [[ " $SKIP " == *" $1 "* ]] && { echo "(skipped: $1)"; return 0; }; return 1; }

step "install the interop peers (Python websockets, Node ws, Chromium, redis-server, tinyproxy, Autobahn wstest)"
bash scripts/install-peers.sh all

step "unit, integration, property and adapter tests (all features, TLS included; the chat against redis-server and Chromium; proxies against tinyproxy; axum over HTTP/1.1 and HTTP/2)"
# The axum example runs as a binary in its test (cargo test builds examples as test harnesses).
cargo build -p tether-axum --all-features --examples
cargo test --workspace --all-features --all-targets

step "headless Chromium against the tokio adapter"
cargo test -p tether-tokio --all-features --test browser -- --include-ignored

step "doc tests"
cargo test --workspace --all-features --doc

step "the core builds without std"
cargo build -p tether-ws --no-default-features

if ! skipped fuzz; then
  step "fuzz targets (${FUZZ_SECONDS}s each, AddressSanitizer)"
  if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
  fi
  mkdir -p target
  for target in $(cargo fuzz list --fuzz-dir fuzz); do
    corpus="fuzz/corpus/$target"
    mkdir -p "$corpus"
    log="target/fuzz-$target.log"
    # AddressSanitizer needs nightly flags; RUSTC_BOOTSTRAP enables them on the stable toolchain.
    if ! RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz "$target" "$corpus" -- \
        -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
      tail -n 60 "$log" >&2
      echo "fuzz target $target failed" >&2
      exit 1
    fi
    printf '%s: %s executions, peak RSS %s MB\n' "$target" \
      "$(grep -oP 'stat::number_of_executed_units:\s*\K[0-9]+' "$log" | tail -n1)" \
      "$(grep -oP 'stat::peak_rss_mb:\s*\K[0-9]+' "$log" | tail -n1)"
  done
fi

if ! skipped interop; then
  step "interop: every adapter against Python websockets and Node ws, both roles"
  bash scripts/interop.sh
fi

if ! skipped autobahn; then
  step "Autobahn|Testsuite cases 1-10, every adapter, both roles (strict)"
  bash scripts/autobahn.sh
fi

step "all tests passed"
