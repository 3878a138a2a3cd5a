#!/usr/bin/env bash
# Builds the Node.js module with napi-rs, checks the generated index.d.ts / index.js are the
# committed ones, and runs the node:test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p palisade-cli
cd node
npm ci --no-audit --no-fund
npm run build
if ! git diff --quiet -- index.d.ts index.js; then
  echo "node/index.d.ts or node/index.js differ from a fresh build: commit the regenerated files" >&2
  git --no-pager diff --stat -- index.d.ts index.js >&2
  exit 1
fi
npm test
cd ..
./scripts/readme-snippets.sh node
