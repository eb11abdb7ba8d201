#!/usr/bin/env bash
# Compiles the generated Kotlin bindings and the JVM test suite with kotlinc,
# and runs it with JUnit against the host library (target/debug) and a real
# observer-server process. Needs: npm kotlin-compiler, Debian libjna-java
# and junit4 (tests/run installs them).
set -euo pipefail
cd "$(dirname "$0")/../.."

kotlin_home="${KOTLIN_HOME:-$(npm root -g 2>/dev/null)/kotlin-compiler}"
kotlinc="$kotlin_home/bin/kotlinc"
lib="$kotlin_home/lib"
cp="/usr/share/java/jna.jar:/usr/share/java/junit4.jar:/usr/share/java/hamcrest-core.jar:$lib/kotlinx-coroutines-core-jvm.jar"

cargo build -q -p observer-ffi -p observer-server
target="${CARGO_TARGET_DIR:-$PWD/target}"
out="$target/kotlin-test"
mkdir -p "$out"
rm -f "$out/observer-test.jar"  # never run a stale suite when kotlinc fails
"$kotlinc" -nowarn -language-version 2.0 \
    android/observer/src/main/kotlin/org/observer/core/observer_ffi.kt \
    android/jvm-test/src/org/observer/core/*.kt \
    -cp "$cp" -d "$out/observer-test.jar" 2>&1 | grep -v '^warning' || true
[ -f "$out/observer-test.jar" ] || { echo "kotlinc failed" >&2; exit 1; }

OBSERVER_SERVER_BIN="$target/debug/observer-server" \
OBSERVER_VECTORS="$PWD/tests/vectors/record-v1.json" \
OBSERVER_RELAY_VECTORS="$PWD/tests/vectors/relay-v1.json" \
OBSERVER_SMS_VECTORS="$PWD/tests/vectors/sms-v1.json" \
java -Djna.library.path="$target/debug" \
    -cp "$out/observer-test.jar:$cp:$lib/kotlin-stdlib.jar" \
    org.junit.runner.JUnitCore org.observer.core.ObserverCoreTest
