#!/usr/bin/env bash
# Runs every check of the project; what CI runs (.ci/run) and what the README gives.
# Installs what a fresh machine lacks (Debian's rustc-web for the wasm32 build).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

step() { printf '\n== %s\n' "$*"; }

step "format"
cargo fmt --all --check

step "clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

step "tests (unit, integration, doc)"
cargo test --workspace

step "C ABI: header in sync, tests static/shared/valgrind/ASan, the README example"
./scripts/c-tests.sh

step "Python package: pip install ./python in a fresh virtualenv, pytest"
./scripts/python-tests.sh

step "Node module: npm ci, napi build (index.d.ts in sync), node --test"
./scripts/node-tests.sh

step "fuzz smoke (about 30 s per target)"
./scripts/fuzz.sh smoke

step "benchmarks compile"
cargo bench --workspace --no-run

step "wasm32 build of the core"
./scripts/wasm-core.sh

step "all checks passed"
