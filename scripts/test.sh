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

# One build of every target of every package: unit and integration tests, the compile-fail (ui)
# tests, the examples, and each benchmark, built in the test profile and run once so that its code
# and assertions are checked (`--all-targets` is `--lib --bins --tests --benches --examples`).
echo "==> cargo test --workspace --all-targets"
cargo test --workspace --all-targets

# Doc tests are not among `--all-targets`; they reuse the libraries built above.
echo "==> cargo test --workspace --doc"
cargo test --workspace --doc

# The fuzz targets are outside the workspace (scripts/fuzz.sh runs them); building them checks
# that they still compile against the parsers they include. Built in the workspace's target
# directory rather than fuzz/target, they reuse what was compiled above with the same versions and
# features.
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
echo "==> (cd fuzz && cargo build --bins --target-dir $target_dir)"
(cd fuzz && cargo build --bins --target-dir "$target_dir")

echo "==> scripts/test.sh: all tests passed in $((SECONDS - started)) s"
