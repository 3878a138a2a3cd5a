#!/usr/bin/env bash
# Builds the C library, checks the committed header is current, and runs the C tests
# against the static and the shared library, under valgrind, and with ASan + UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p palisade-ffi
if ! git diff --quiet -- c-header/palisade.h; then
  echo "c-header/palisade.h differs from a fresh generation: commit the regenerated header" >&2
  git --no-pager diff --stat -- c-header/palisade.h >&2
  exit 1
fi
if ! command -v valgrind >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
fi
out=target/c-tests
mkdir -p "$out"
libs="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"
cflags="-std=c11 -Wall -Wextra -Werror -pthread -Ic-header"
echo "== C tests, static library"
gcc $cflags c-header/tests/test.c target/release/libpalisade.a $libs -o "$out/test_static"
"$out/test_static"
echo "== tests/corpus through the C ABI, static library"
gcc $cflags c-header/tests/corpus.c target/release/libpalisade.a $libs -o "$out/corpus_static"
"$out/corpus_static" tests/corpus
echo "== C tests, shared library"
gcc $cflags c-header/tests/test.c -Ltarget/release -lpalisade -Wl,-rpath,"$PWD/target/release" -o "$out/test_shared"
"$out/test_shared"
echo "== C tests under valgrind"
valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect "$out/test_static"
valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect "$out/corpus_static" tests/corpus
echo "== C tests with ASan + UBSan"
gcc $cflags -g -fsanitize=address,undefined -fno-omit-frame-pointer c-header/tests/test.c \
  target/release/libpalisade.a $libs -o "$out/test_asan"
ASAN_OPTIONS=detect_leaks=1 "$out/test_asan"
gcc $cflags -g -fsanitize=address,undefined -fno-omit-frame-pointer c-header/tests/corpus.c \
  target/release/libpalisade.a $libs -o "$out/corpus_asan"
ASAN_OPTIONS=detect_leaks=1 "$out/corpus_asan" tests/corpus
echo "== the README's example"
gcc -std=c11 -Wall -Werror -Ic-header c-header/examples/check.c -Ltarget/release -lpalisade \
  -Wl,-rpath,"$PWD/target/release" -o "$out/check"
set +e
"$out/check" examples/shop 10.1.0.5 spiffe://cluster.local/ns/payments/sa/payments 10.2.0.7 8443
rc=$?
set -e
[ "$rc" -eq 3 ] || { echo "check: expected a deny (exit 3), got $rc" >&2; exit 1; }
echo "C ABI checks passed"
