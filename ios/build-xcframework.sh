#!/usr/bin/env bash
# Builds ObserverFFI.xcframework (static library + the generated C header
# and module map) for iPhone and the simulators, on macOS with Xcode:
#   rustup target add aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios
#   ios/build-xcframework.sh
set -euo pipefail
cd "$(dirname "$0")/.."

for t in aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios; do
    cargo build --release -p observer-ffi --target "$t"
done
sim=target/ios-sim-universal
mkdir -p "$sim"
lipo -create \
    target/aarch64-apple-ios-sim/release/libobserver_ffi.a \
    target/x86_64-apple-ios/release/libobserver_ffi.a \
    -output "$sim/libobserver_ffi.a"

rm -rf ios/ObserverFFI.xcframework
xcodebuild -create-xcframework \
    -library target/aarch64-apple-ios/release/libobserver_ffi.a -headers ios/FFI/include \
    -library "$sim/libobserver_ffi.a" -headers ios/FFI/include \
    -output ios/ObserverFFI.xcframework
echo "built ios/ObserverFFI.xcframework"
