#!/usr/bin/env bash
# Builds the core crate for wasm32-unknown-unknown (no default features: no file system).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/wasm-toolchain.sh
wasm_cargo -p palisade --no-default-features "$@"
echo "wasm32 build of the core: ok"
