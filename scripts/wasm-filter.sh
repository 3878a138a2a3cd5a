#!/usr/bin/env bash
# Builds the Envoy filter (proxy-wasm/) for wasm32-unknown-unknown:
# target/wasm/wasm32-unknown-unknown/release/palisade_filter.wasm.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/wasm-toolchain.sh
# The filter ships inside every sidecar: std built for size, then binaryen's wasm-opt -Oz
# (about 18% smaller again; Debian's binaryen, installed when missing).
wasm_cargo -Zbuild-std-features=optimize_for_size --manifest-path proxy-wasm/Cargo.toml --lib
out=target/wasm/wasm32-unknown-unknown/release/palisade_filter.wasm
if ! command -v wasm-opt >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq binaryen >/dev/null
fi
wasm-opt -Oz --enable-bulk-memory --enable-sign-ext --enable-mutable-globals --enable-nontrapping-float-to-int \
  "$out" -o "$out.opt"
mv "$out.opt" "$out"
ls -l "$out"
