#!/usr/bin/env bash
# Runs every fuzz target for FUZZ_SECONDS (default 45) with libFuzzer and
# AddressSanitizer, starting from its committed seed corpus
# (tests/fuzz/corpus/TARGET). New inputs go to target/fuzz-corpus, not the
# tree; a crash fails the run and leaves its input under
# tests/fuzz/artifacts/TARGET (add it to the seeds once fixed).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${FUZZ_SECONDS:-45}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked --version 0.13.2
fi
# cargo fuzz passes -Z flags (sanitizer, coverage); this stable toolchain
# accepts them only with RUSTC_BOOTSTRAP. Nothing else is built this way.
export RUSTC_BOOTSTRAP=1

targets=(envelope batch enrollment_code form_definition jpeg_scrub log_note xpath relay_bundle sms)
cargo fuzz build --fuzz-dir tests/fuzz
for t in "${targets[@]}"; do
    mkdir -p "target/fuzz-corpus/$t"
    log="target/fuzz-$t.log"
    echo "fuzz: $t for ${seconds}s"
    if ! cargo fuzz run --fuzz-dir tests/fuzz "$t" "target/fuzz-corpus/$t" "tests/fuzz/corpus/$t" -- \
        -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 60 "$log" >&2
        echo "fuzz: $t failed (its input is under tests/fuzz/artifacts/$t)" >&2
        exit 1
    fi
    grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb)" "$log"
done
