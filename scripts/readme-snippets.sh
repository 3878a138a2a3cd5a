#!/usr/bin/env bash
# Runs the README's Python and JavaScript snippets exactly as written, from the repository
# root, and checks what they print. (The Rust snippet is a doc test; the C one is built by
# c-tests.sh.) Usage: readme-snippets.sh python|node
set -euo pipefail
cd "$(dirname "$0")/.."
lang=$1
tmp=$(mktemp -d)
awk -v lang="$lang" '
  $0 == "## Using Python" { section = "python" }
  $0 == "## Using Node.js" { section = "node" }
  /^## / && $0 != "## Using Python" && $0 != "## Using Node.js" { section = "" }
  section == lang && /^```(python|js)$/ { inblock = 1; next }
  inblock && /^```$/ { inblock = 0; done = 1 }
  inblock && !done { print }
' README.md > "$tmp/snippet"
[ -s "$tmp/snippet" ] || { echo "no $lang snippet found in README.md" >&2; exit 1; }
if [ "$lang" = python ]; then
  out=$(target/py-venv/bin/python "$tmp/snippet")
else
  cp "$tmp/snippet" ./.readme-snippet.js
  out=$(node ./.readme-snippet.js); rm -f ./.readme-snippet.js
fi
echo "$out"
[ "$out" = "deny identity_mismatch" ] || { echo "the README's $lang snippet printed: $out" >&2; exit 1; }
