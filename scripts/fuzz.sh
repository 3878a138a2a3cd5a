#!/usr/bin/env bash
# Runs the fuzz targets: `scripts/fuzz.sh smoke` (about 30 s each, what CI runs) or
# `scripts/fuzz.sh long SECONDS [TARGET...]` for long runs. Corpora grow in fuzz/corpus/,
# seeded from fuzz/seeds/; crashes land in fuzz/artifacts/. Needs the nightly toolchain
# (installed here) and cargo-fuzz (installed by this script when missing).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
mode=${1:-smoke}
secs=30
if [ "$mode" = long ]; then secs=${2:-3600}; shift 2 || true; else shift || true; fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(selector bundle_bytes request_json decide differential)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cargo +nightly fuzz build -O
triple=$(rustc +nightly -vV | sed -n "s/^host: //p")
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  [ -d "seeds/$t" ] && cp -n seeds/"$t"/* "corpus/$t/" 2>/dev/null || true
  echo "== fuzz $t for ${secs}s"
  # The built fuzzer runs directly (not through `cargo fuzz run`, which may rebuild), so
  # that `time` reports the fuzzer's own CPU time: what RELIABILITY.md records.
  mkdir -p "artifacts/$t"
  TIMEFORMAT="== fuzz $t: wall %0R s, cpu %0U s user + %0S s sys"
  # A dictionary of the tokens that found the revision-6 findings (typed lists, reserved
  # labels, shapes, new kinds), for the bundle target.
  dict=(); [ "$t" = bundle_bytes ] && dict=(-dict=bundle.dict)
  time ("target/$triple/release/$t" -artifact_prefix="artifacts/$t/" -max_total_time="$secs" -rss_limit_mb=4096 \
    -timeout=10 "${dict[@]}" "corpus/$t" 2>&1 | grep -E "^(Done|#[0-9]+ +DONE)|ERROR|panicked|SUMMARY" || true)
  if ls artifacts/"$t"/crash-* artifacts/"$t"/timeout-* artifacts/"$t"/oom-* >/dev/null 2>&1; then
    echo "fuzz target $t found a failure: see fuzz/artifacts/$t" >&2
    exit 1
  fi
done
echo "fuzz $mode: ${#targets[@]} targets clean"
