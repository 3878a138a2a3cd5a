#!/usr/bin/env bash
# Builds and installs the Python package in a fresh virtualenv (pip fetches maturin into its
# isolated build environment) and runs its tests.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/py-venv
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
CARGO_TARGET_DIR="$PWD/target" "$venv/bin/pip" install -q ./python pytest
cargo build -q -p palisade-cli
"$venv/bin/python" -m pytest -q python/tests
./scripts/readme-snippets.sh python
