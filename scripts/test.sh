#!/usr/bin/env bash
# Runs every test of the project, installing what it needs itself.
#   bash scripts/test.sh            # everything
#   FUZZ_SECONDS=5 bash scripts/test.sh   # shorter fuzz runs
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS="${FUZZ_SECONDS:-30}"

step() { printf '\n==> %s\n' "$*"; }

step "unit, integration, property and doc tests (workspace)"
cargo test --workspace --all-targets
cargo test --workspace --doc

step "the core builds without std"
cargo build -p tether --no-default-features

step "fuzz targets (${FUZZ_SECONDS}s each)"
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install --locked cargo-fuzz
fi
for target in $(cargo fuzz list --fuzz-dir fuzz); do
  corpus="fuzz/corpus/$target"
  mkdir -p "$corpus"
  log="target/fuzz-$target.log"
  mkdir -p target
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

step "all tests passed"
