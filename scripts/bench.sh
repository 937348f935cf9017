#!/usr/bin/env bash
# Runs the hit-path benchmark and prints its throughput as a Markdown table for the README.
# Extra arguments go to criterion, e.g. `scripts/bench.sh redis_hit` to run one group.
set -euo pipefail
cd "$(dirname "$0")/.."

results=target/criterion
# Only results written by this run are reported, not those of groups it filtered out.
run_started=$(mktemp)
trap 'rm -f "$run_started"' EXIT

cargo bench --bench hit_path -- "$@"

# Criterion's per-iteration time estimate in ns: the regression slope when it has one, else the
# mean. Each iteration is one call, so calls per second = 1e9 / estimate.
nanos_per_call() {
    local file="$results/$1/new/estimates.json"
    [ "$file" -nt "$run_started" ] || return 0
    local estimate
    estimate=$(grep -o '"slope":{"confidence_interval":{[^}]*},"point_estimate":[0-9.e+-]*' "$file" ||
        grep -o '"mean":{"confidence_interval":{[^}]*},"point_estimate":[0-9.e+-]*' "$file" ||
        true)
    echo "${estimate##*:}"
}

calls_per_second() {
    local nanos
    nanos=$(nanos_per_call "$1")
    if [ -n "$nanos" ]; then
        awk -v ns="$nanos" 'BEGIN { printf "%.0f", 1e9 / ns }'
    fi
}

echo
echo "| backend | concurrency | #[cached] calls/s | raw, defaults | raw, TCP_NODELAY | cached / raw defaults | cached / raw NODELAY |"
echo "|---------|------------:|------------------:|--------------:|-----------------:|----------------------:|---------------------:|"
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
}
for concurrency in 1 64; do
    cached=$(calls_per_second "redis_hit/cached/$concurrency")
    defaults=$(calls_per_second "redis_hit/raw_defaults/$concurrency")
    nodelay=$(calls_per_second "redis_hit/raw_nodelay/$concurrency")
    if [ -n "$cached" ] && [ -n "$defaults" ] && [ -n "$nodelay" ]; then
        echo "| Redis | $concurrency | $cached | $defaults | $nodelay | $(ratio "$cached" "$defaults") | $(ratio "$cached" "$nodelay") |"
    fi
done
for concurrency in 1 64; do
    cached=$(calls_per_second "memory_hit/cached/$concurrency")
    if [ -n "$cached" ]; then
        echo "| memory | $concurrency | $cached | | | | |"
    fi
done
