#!/usr/bin/env bash
# Builds the Envoy filter (proxy-wasm/) for wasm32-unknown-unknown with Debian's rustc-web
# and -Zbuild-std (see ../shared/notes/wasm-build.md): target/wasm/.../palisade_filter.wasm.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/rustc ] || ! dpkg -s rust-web-src >/dev/null 2>&1 || ! command -v wasm-ld >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rustc-web cargo-web rust-web-src lld >/dev/null
fi
RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld \
  /usr/bin/cargo build --release --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort \
  --manifest-path proxy-wasm/Cargo.toml --target-dir target/wasm --lib
ls -l target/wasm/wasm32-unknown-unknown/release/palisade_filter.wasm
