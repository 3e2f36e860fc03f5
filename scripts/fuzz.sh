#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets) for SECONDS seconds each over a copy of its
# committed corpus (fuzz/corpus/<target>), failing if any target finds a crash. Needs a
# nightly toolchain (cargo-fuzz builds with sanitizers); without one it says so and
# succeeds. cargo-fuzz is installed when missing.
#
#   scripts/fuzz.sh [SECONDS]     default 20
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-20}
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "scripts/fuzz.sh: no nightly toolchain here (rustup toolchain install nightly); fuzzing skipped"
    exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked --quiet
fi
cd fuzz
cargo +nightly fuzz build -O
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
status=0
for target in $(cargo +nightly fuzz list); do
    mkdir -p "$scratch/$target"
    cp -r "corpus/$target/." "$scratch/$target/" 2>/dev/null || true
    echo "fuzzing $target for ${SECONDS_EACH}s"
    if ! cargo +nightly fuzz run "$target" -O "$scratch/$target" -- \
        -max_total_time="$SECONDS_EACH" -print_final_stats=1 -rss_limit_mb=2048 \
        >"$scratch/$target.log" 2>&1; then
        echo "scripts/fuzz.sh: $target failed; its output:"
        tail -n 60 "$scratch/$target.log"
        status=1
    else
        grep -E '^stat::number_of_executed_units|^Done' "$scratch/$target.log" | tail -n 2 || true
    fi
done
exit $status
