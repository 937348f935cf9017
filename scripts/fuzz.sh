#!/usr/bin/env bash
# Fuzzes the parsers that read untrusted or user-written text, each for a bounded time:
#   key_template  the `key`/`keys`/`tags` template parser of the macro (cachemacro/src/template.rs)
#   envelope      the reader of stored entries (cachemacro_runtime::envelope::decode and .value())
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] (default 60)
#
# Installs cargo-fuzz when it is missing. cargo-fuzz needs nightly compiler flags (sanitizers,
# coverage instrumentation); RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them. Inputs that
# found new coverage are kept in fuzz/corpus/<target>; a crashing input is saved in
# fuzz/artifacts/<target> and the script stops with cargo-fuzz's command to reproduce it.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [SECONDS_PER_TARGET]" >&2
    exit 2
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> cargo-fuzz not found: installing it"
    cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
cd fuzz
for target in $(cargo fuzz list); do
    echo "==> fuzzing $target for $seconds s"
    cargo fuzz run "$target" -- -max_total_time="$seconds"
done
echo "==> scripts/fuzz.sh: no target crashed"
