#!/usr/bin/env bash
# Runs every check of the project; what CI runs (.ci/run) and what the README gives.
# Installs what a fresh machine lacks (Debian's rustc-web for the wasm32 build).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

step() { printf '\n== %s\n' "$*"; }

# palisade-sync's tests start a real etcd (Debian's etcd-server); etcd-client (built by clippy and the tests) needs
# protoc and the well-known-types .proto files (libprotobuf-dev).
if ! command -v etcd >/dev/null || ! command -v protoc >/dev/null || [ ! -e /usr/include/google/protobuf/descriptor.proto ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server protobuf-compiler libprotobuf-dev >/dev/null
fi

step "format"
cargo fmt --all --check

step "clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings
cargo fmt --manifest-path proxy-wasm/Cargo.toml --check
cargo clippy --manifest-path proxy-wasm/Cargo.toml --target-dir target/proxy-wasm-check -- -D warnings

step "wasm32: the core, and the Envoy filter (target/wasm/.../palisade_filter.wasm, < 1 MiB)"
./scripts/wasm-core.sh
./scripts/wasm-filter.sh
size=$(stat -c %s target/wasm/wasm32-unknown-unknown/release/palisade_filter.wasm)
[ "$size" -lt 1048576 ] || { echo "the filter is $size bytes, over 1 MiB" >&2; exit 1; }

step "tests (unit, integration, doc; the filter through the proxy-wasm host; the peers' agreement; palisade-sync against a real etcd)"
cargo test --workspace

step "C ABI: header in sync, tests static/shared/valgrind/ASan, the README example"
./scripts/c-tests.sh

step "Python package: pip install ./python in a fresh virtualenv, pytest"
./scripts/python-tests.sh

step "Node module: npm ci, napi build (index.d.ts in sync), node --test"
./scripts/node-tests.sh

step "ext_authz server: palisade-serve on loopback, Envoy's Python stubs (xds-protos) as the client"
./scripts/server-tests.sh

step "fuzz smoke (about 30 s per target)"
./scripts/fuzz.sh smoke

# The peers' bench is type-checked by clippy above; its release build of Cedar and regorus is
# only needed to run it (BENCHMARKS.md).
step "benchmarks compile"
cargo bench --workspace --exclude palisade-peers --no-run


step "all checks passed"
