#!/usr/bin/env bash
# Generates the Kotlin and Swift bindings from the compiled library
# (uniffi library mode) into android/ and ios/.
#   bindings/generate.sh           regenerate the committed sources
#   bindings/generate.sh --check   fail if the committed sources are stale
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build -q -p observer-ffi --features bindgen
target="${CARGO_TARGET_DIR:-$PWD/target}"
lib="$target/debug/libobserver_ffi.so"
[ -f "$lib" ] || lib="$target/debug/libobserver_ffi.dylib"
bindgen() { cargo run -q -p observer-ffi --features bindgen --bin uniffi-bindgen -- generate --no-format --library "$lib" "$@"; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
bindgen --language kotlin --out-dir "$out/kotlin" >/dev/null
bindgen --language swift --out-dir "$out/swift" >/dev/null

kotlin_dest=android/observer/src/main/kotlin/org/observer/core/observer_ffi.kt
swift_dest=ios/Sources/ObserverCore/ObserverCoreFFI.swift
header_dest=ios/FFI/include
pairs=(
  "$out/kotlin/org/observer/core/observer_ffi.kt:$kotlin_dest"
  "$out/swift/ObserverCoreFFI.swift:$swift_dest"
  "$out/swift/observer_ffiFFI.h:$header_dest/observer_ffiFFI.h"
  "$out/swift/observer_ffiFFI.modulemap:$header_dest/module.modulemap"
)

if [ "${1:-}" = "--check" ]; then
  stale=0
  for p in "${pairs[@]}"; do
    if ! cmp -s "${p%%:*}" "${p#*:}"; then
      echo "stale generated binding: ${p#*:} (run bindings/generate.sh and commit)" >&2
      stale=1
    fi
  done
  exit $stale
fi

for p in "${pairs[@]}"; do
  mkdir -p "$(dirname "${p#*:}")"
  cp "${p%%:*}" "${p#*:}"
done
echo "generated: ${pairs[*]#*:}"
