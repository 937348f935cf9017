#!/usr/bin/env bash
# Measures what `#[cached]` costs at build time: generates a throwaway binary crate with N cached
# functions in one file (each `async fn(id: u64) -> Result<Row, String>`), and times rebuilds of
# that crate alone with the attributes on and off (the same file: each attribute sits in a
# `cfg_attr` on a feature), in release and debug. Prints a Markdown table for the README.
#
# Usage: scripts/build-cost.sh [FUNCTIONS] [REPETITIONS]   (defaults 200 and 3)
#
# Environment:
#   BUILD_COST_DIR     where the crate is generated (default: a fresh temp dir, removed at exit)
#   BUILD_COST_TARGET  its target dir (default: target/ inside BUILD_COST_DIR); dependencies are
#                      built once before timing, so reusing a target dir saves that time
#   CARGO_INCREMENTAL  left as the caller sets it; unset, rebuilds are timed without incremental
#                      compilation (set to 1 to time the incremental rebuild after a touch)
#   BUILD_COST_SHAPE   `free` (default): free functions; `method`: methods taking `&self` of a
#                      `Clone` service, which borrow their receiver
#   BUILD_COST_PROFILES  the profiles to time (default "release debug")
#
# Each rebuild touches the generated source and runs `cargo build` on that crate only; the
# dependencies (this repository's `cachemacro-runtime`, serde, tokio) are already built. Plain
# and cached rebuilds alternate, and the table shows the median of each, in wall-clock time and
# in CPU time (user + system, which other work on a busy machine disturbs less). Not run by CI:
# it takes minutes and its figures depend on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

functions=${1:-200}
repetitions=${2:-3}
if ! [[ $functions =~ ^[1-9][0-9]*$ && $repetitions =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [FUNCTIONS] [REPETITIONS]" >&2
    exit 2
fi
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

if [ -n "${BUILD_COST_DIR:-}" ]; then
    dir=$BUILD_COST_DIR
    mkdir -p "$dir"
else
    dir=$(mktemp -d)
    trap 'rm -rf "$dir"' EXIT
fi
target=${BUILD_COST_TARGET:-$dir/target}
shape=${BUILD_COST_SHAPE:-free}
profiles=${BUILD_COST_PROFILES:-release debug}
for profile in $profiles; do
    if [ "$profile" != release ] && [ "$profile" != debug ]; then
        echo "BUILD_COST_PROFILES holds release and/or debug" >&2
        exit 2
    fi
done
case $shape in
free) receiver="" call="" ;;
method) receiver="&self, " call="DB." ;;
*)
    echo "BUILD_COST_SHAPE must be free or method" >&2
    exit 2
    ;;
esac

mkdir -p "$dir/src"
# The repository's lockfile, so the crate builds against the same dependency versions.
cp Cargo.lock "$dir/Cargo.lock"
cat >"$dir/Cargo.toml" <<EOF
[package]
name = "build-cost"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
cachemacro-runtime = { path = "$repo/cachemacro-runtime" }
serde = { version = "1", features = ["derive"] }
tokio = { version = "1", features = ["rt"] }

[features]
# The \`#[cached]\` attributes; without it the same functions are plain async fns.
cached = []

# Not part of any enclosing workspace.
[workspace]
EOF

{
    echo "//! $functions functions ($shape), cached with the \`cached\` feature, plain without it."
    echo
    echo "use std::future::Future;"
    echo "use std::pin::Pin;"
    echo
    echo "#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]"
    echo "pub struct Row {"
    echo "    pub id: u64,"
    echo "    pub name: String,"
    echo "}"
    if [ "$shape" = method ]; then
        echo
        echo "#[derive(Clone)]"
        echo "pub struct Db;"
        echo
        echo "pub static DB: Db = Db;"
        echo
        echo "impl Db {"
    fi
    for ((i = 0; i < functions; i++)); do
        echo
        echo "#[cfg_attr(feature = \"cached\", cachemacro_runtime::cached(ttl = \"10m\", key = \"row$i:<id>\"))]"
        echo "pub async fn get_row_$i(${receiver}id: u64) -> Result<Row, String> {"
        echo "    if id == u64::MAX {"
        echo "        return Err(\"no row $i\".to_owned());"
        echo "    }"
        echo "    Ok(Row { id, name: format!(\"row $i/{id}\") })"
        echo "}"
    done
    if [ "$shape" = method ]; then
        echo "}"
    fi
    echo
    echo "type Call = fn(u64) -> Pin<Box<dyn Future<Output = Result<Row, String>>>>;"
    echo
    echo "/// Every function, called through a table so that each future is built on its own."
    echo "const CALLS: [Call; $functions] = ["
    for ((i = 0; i < functions; i++)); do
        echo "    |id| Box::pin(${call}get_row_$i(id)),"
    done
    echo "];"
    echo
    echo "fn main() {"
    echo "    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();"
    echo "    let rows = runtime.block_on(async {"
    echo "        let mut rows = 0;"
    echo "        for (id, call) in CALLS.iter().enumerate() {"
    echo "            rows += usize::from(call(id as u64).await.is_ok());"
    echo "        }"
    echo "        rows"
    echo "    });"
    echo "    println!(\"{rows} rows\");"
    echo "}"
} >"$dir/src/main.rs"

build() {
    # $1: release or debug; $2: cached or plain
    local args=(--manifest-path "$dir/Cargo.toml" --target-dir "$target" --quiet)
    [ "$1" = release ] && args+=(--release)
    [ "$2" = cached ] && args+=(--features cached)
    cargo build "${args[@]}"
}

echo "==> $functions functions ($shape) in $dir, target dir $target, CARGO_INCREMENTAL=$CARGO_INCREMENTAL"
echo "==> building the dependencies (and the crate once each way)"
for profile in $profiles; do
    for variant in plain cached; do
        build "$profile" "$variant"
    done
done
# A cached run, as a smoke test of the generated code.
for profile in $profiles; do
    "$target/$profile/build-cost" >/dev/null
done

# Seconds one rebuild of the crate takes: wall-clock, then CPU (user + system, all processes).
# A failed build stops the script.
time_rebuild() {
    touch "$dir/src/main.rs"
    local TIMEFORMAT='%R %U %S'
    { time build "$1" "$2" 2>&3; } 3>&2 2>"$dir/timing" || exit 1
    awk '{ printf "%.2f %.2f", $1, $2 + $3 }' "$dir/timing"
}

median() {
    sort -n | awk '{ all[NR] = $1 } END { if (NR % 2) print all[(NR + 1) / 2]; else printf "%.2f", (all[NR / 2] + all[NR / 2 + 1]) / 2 }'
}

# One row of the table from the medians of plain and cached times.
row() {
    awk -v p="$3" -v c="$4" -v n="$functions" -v profile="$1" -v clock="$2" \
        'BEGIN { printf "| %s | %s | %d | %.2f | %.2f | %.3f | %.1f |", profile, clock, n, p, c, (c - p) / n, c / p }'
}

rows=()
for profile in $profiles; do
    plain_wall=() plain_cpu=() cached_wall=() cached_cpu=()
    for ((run = 1; run <= repetitions; run++)); do
        timing=$(time_rebuild "$profile" plain)
        read -r wall cpu <<<"$timing"
        plain_wall+=("$wall") plain_cpu+=("$cpu")
        timing=$(time_rebuild "$profile" cached)
        read -r wall cpu <<<"$timing"
        cached_wall+=("$wall") cached_cpu+=("$cpu")
        echo "    $profile run $run: plain ${plain_wall[-1]} s (CPU ${plain_cpu[-1]} s)," \
            "cached ${cached_wall[-1]} s (CPU ${cached_cpu[-1]} s)"
    done
    rows+=("$(row "$profile" wall "$(printf '%s\n' "${plain_wall[@]}" | median)" \
        "$(printf '%s\n' "${cached_wall[@]}" | median)")")
    rows+=("$(row "$profile" CPU "$(printf '%s\n' "${plain_cpu[@]}" | median)" \
        "$(printf '%s\n' "${cached_cpu[@]}" | median)")")
done

echo
echo "Medians of $repetitions rebuilds; CPU is user + system time of every process of the build."
echo
echo "| profile | time | functions | plain s | cached s | extra s per function | cached / plain |"
echo "|---|---|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
