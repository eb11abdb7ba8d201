#!/usr/bin/env bash
# FFI benchmark: release library size (stripped) and one durable save from
# Kotlin against the same save from Rust, in the same run; writes the "ffi"
# section of docs/benchmarks.md. Needs what android/jvm-test/run.sh needs.
set -euo pipefail
cd "$(dirname "$0")/.."
kotlin_home="${KOTLIN_HOME:-$(npm root -g 2>/dev/null)/kotlin-compiler}"
cp="/usr/share/java/jna.jar:$kotlin_home/lib/kotlin-stdlib.jar:$kotlin_home/lib/kotlinx-coroutines-core-jvm.jar"

# The app build, measured for size; then the bench build (with the C hook
# that times the same save inside Rust), which the JVM loads.
cargo build -q --release -p observer-ffi -p observer-bench
out=target/kotlin-bench
mkdir -p "$out/app" "$out/lib"
cp target/release/libobserver_ffi.so "$out/app/"
cargo build -q --release -p observer-ffi --features bench
cp target/release/libobserver_ffi.so "$out/lib/"
"$kotlin_home/bin/kotlinc" -nowarn \
    android/observer/src/main/kotlin/org/observer/core/observer_ffi.kt \
    android/jvm-test/src/org/observer/core/*.kt \
    -cp "$cp:/usr/share/java/junit4.jar" -d "$out/observer-bench.jar" 2>&1 | grep -v '^warning' || true
target/release/observer-bench ffi \
    --library "$out/app/libobserver_ffi.so" \
    --bench-library "$out/lib/libobserver_ffi.so" \
    --java-classpath "$out/observer-bench.jar:$cp:/usr/share/java/junit4.jar" \
    --command "bench/ffi.sh" "$@"
