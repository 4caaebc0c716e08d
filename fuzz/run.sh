#!/usr/bin/env bash
# Fuzzes every parser of outside input with cargo-fuzz (libFuzzer; optimised, with debug
# assertions so that overflows count as crashes) for SECS seconds each (600 by default), then
# minimises each corpus (`cargo fuzz cmin`) so what is committed stays small. Prints
# executions, corpus size and crashes per target; crashing inputs land in
# fuzz/artifacts/<target>/ (once fixed, copy it into fuzz/regressions/<target>/, which cmin
# leaves alone and `tests/fuzz_corpora.rs` replays beside the corpus). Needs a nightly
# toolchain (libFuzzer's instrumentation) and cargo-fuzz; installs them when missing.
# Usage: bash fuzz/run.sh [SECS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-600}
shift || true
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
cargo +nightly fuzz build -O -a
mkdir -p target/logs
printf '| target | executions | seconds | corpus (files) | crashes |\n|---|---|---|---|---|\n' > target/logs/summary.md
for t in "${targets[@]}"; do
    log=target/logs/$t.log
    # -rss_limit_mb: an input that makes a parser allocate gigabytes is a bug too.
    cargo +nightly fuzz run -O -a "$t" -- -max_total_time="$secs" -rss_limit_mb=2048 \
        -timeout=10 -print_final_stats=1 >"$log" 2>&1 || true
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
    took=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | grep -o 'in [0-9]*' | grep -o '[0-9]*' || echo "$secs")
    crashes=$(find "artifacts/$t" -type f 2>/dev/null | wc -l)
    cargo +nightly fuzz cmin -O -a "$t" >/dev/null 2>&1 || true
    files=$(find "corpus/$t" -type f | wc -l)
    printf '| %s | %s | %s | %s | %s |\n' "$t" "$runs" "$took" "$files" "$crashes" | tee -a target/logs/summary.md
done
cat target/logs/summary.md
