#!/usr/bin/env bash
# Builds the Envoy filter (proxy-wasm/) for wasm32-unknown-unknown:
# target/wasm/wasm32-unknown-unknown/release/palisade_filter.wasm.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/wasm-toolchain.sh
wasm_cargo --manifest-path proxy-wasm/Cargo.toml --lib
ls -l target/wasm/wasm32-unknown-unknown/release/palisade_filter.wasm
