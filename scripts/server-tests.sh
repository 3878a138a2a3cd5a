#!/usr/bin/env bash
# palisade-serve with an independent client: Envoy's generated Python stubs (xds-protos) over
# grpcio, in a fresh virtualenv, against the server started here on loopback (port 0) with
# examples/shop; then SIGTERM, which must end the server with status 0 (graceful shutdown).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/server-venv
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q grpcio grpcio-health-checking xds-protos pytest
cargo build -q -p palisade-server --bin palisade-serve
bin="${CARGO_TARGET_DIR:-target}/debug/palisade-serve"

out=$(mktemp)
"$bin" --bundle examples/shop --listen 127.0.0.1:0 --log-level warn >"$out" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -f "$out"' EXIT
addr=""
for _ in $(seq 1 100); do
    addr=$(sed -n 's/^listening grpc //p' "$out")
    [ -n "$addr" ] && break
    kill -0 "$pid" 2>/dev/null || { echo "palisade-serve exited early" >&2; exit 1; }
    sleep 0.1
done
[ -n "$addr" ] || { echo "palisade-serve did not start listening" >&2; exit 1; }
echo "palisade-serve (pid $pid) on $addr"

PALISADE_SERVE_ADDR="$addr" "$venv/bin/python" -m pytest -q server/tests/python

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
trap 'rm -f "$out"' EXIT
[ "$status" -eq 0 ] || { echo "palisade-serve exited with $status after SIGTERM" >&2; exit 1; }
echo "palisade-serve stopped gracefully"
