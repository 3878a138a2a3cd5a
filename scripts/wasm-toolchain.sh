# Sourced by the wasm build scripts: installs Debian's rustc-web toolchain (the rustup one has
# no wasm32 std here) when missing, and defines `wasm_cargo` to build with it (-Zbuild-std).
# See ../shared/notes/wasm-build.md.
if [ ! -x /usr/bin/rustc ] || ! dpkg -s rust-web-src >/dev/null 2>&1 || ! command -v wasm-ld >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rustc-web cargo-web rust-web-src lld >/dev/null
fi
wasm_cargo() {
  RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld \
    /usr/bin/cargo build --release --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort \
    --target-dir target/wasm "$@"
}
