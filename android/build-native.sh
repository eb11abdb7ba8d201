#!/usr/bin/env bash
# Builds libobserver_ffi.so for the Android ABIs into the library module's
# jniLibs, on a machine with the Android NDK:
#   rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android
#   cargo install cargo-ndk
#   export ANDROID_NDK_HOME=/path/to/ndk
#   android/build-native.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo ndk \
    -t arm64-v8a -t armeabi-v7a -t x86_64 \
    --platform 24 \
    -o android/observer/src/main/jniLibs \
    build --release -p observer-ffi
