#!/usr/bin/env bash
# Instructions per hit of each client in the peer benchmark, counted by callgrind: unlike
# seconds, the count does not move with the machine's load, so it compares changes to the hit
# path exactly. Each client reads one 200 B row on a current-thread runtime, once with few calls
# and once with many, from a loopback redis-server; the difference divided by the extra calls
# is what one hit costs the client's process (the server's work is not counted).
#
#   bash scripts/hit-instructions.sh            # 64 tasks
#   TASKS=1 bash scripts/hit-instructions.sh
#   CLIENTS="ours ours-memory" bash scripts/hit-instructions.sh   # only these clients
#
# Needs valgrind and redis-server. Not part of the test run.
set -euo pipefail
cd "$(dirname "$0")/.."

tasks=${TASKS:-64}
few=20
many=120
manifest=benches/peers/Cargo.toml
cargo build --release --manifest-path "$manifest"
binary=${CARGO_TARGET_DIR:-benches/peers/target}/release/cachemacro-peers

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$scratch"' EXIT
scratch=$(mktemp -d)
for _ in $(seq 50); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.1
done
url="redis://127.0.0.1:$port/"

instructions() {
    valgrind --tool=callgrind --callgrind-out-file="$scratch/out" "$binary" \
        "--hit-loop=$1,$2,$tasks,$url" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

echo
echo "| client | instructions per hit ($tasks tasks) |"
echo "|---|---:|"
for client in ${CLIENTS:-manager multiplexed cached-crate ours ours-memory moka}; do
    redis-cli -p "$port" flushall >/dev/null
    low=$(instructions "$client" "$few")
    high=$(instructions "$client" "$many")
    per_hit=$(( (high - low) / ((many - few) * tasks) ))
    echo "| $client | $per_hit |"
done
