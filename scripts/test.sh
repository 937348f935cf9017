#!/usr/bin/env bash
# Runs every test of the workspace: unit, integration, compile-fail (ui), doc tests, and each
# benchmark once in test mode. Behaviour tests start private `redis-server` processes, so the
# server is installed first when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS

if ! command -v redis-server >/dev/null 2>&1; then
    echo "==> redis-server not found: installing it with apt-get"
    if [ "$(id -u)" -eq 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1; then
        as_root=(sudo)
    else
        echo "error: installing redis-server needs root or sudo; install it and run again" >&2
        exit 1
    fi
    "${as_root[@]}" apt-get update
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server
fi
echo "==> $(redis-server --version)"

# Benchmarks built in the test profile and run once each, so their code and assertions are checked.
echo "==> cargo test --workspace --benches"
cargo test --workspace --benches

# The fuzz targets are outside the workspace (scripts/fuzz.sh runs them); building them checks
# that they still compile against the parsers they include.
echo "==> (cd fuzz && cargo build --bins)"
(cd fuzz && cargo build --bins)

echo "==> cargo test --workspace"
cargo test --workspace

echo "==> scripts/test.sh: all tests passed in $((SECONDS - started)) s"
