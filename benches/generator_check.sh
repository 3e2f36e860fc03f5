#!/usr/bin/env bash
# Is the load generator the bottleneck? Runs the same fan-out (1 publisher → SUBS
# subscribers, MSGS messages of SIZE bytes) against one fresh shardcast server in two ways,
# alternating, REPS times each:
#   one:  a single `shardcast bench pubsub` process holds every connection;
#   two:  two `shardcast bench sub` processes hold half the subscribers each, and a
#         `shardcast bench pub` process publishes once both are subscribed.
# If one generator process were the limit, "two" would deliver clearly more per second.
# Prints one line per run and the medians. Usage:
#   benches/generator_check.sh [SUBS] [MSGS] [SIZE] [REPS]      (defaults 100 40000 128 3)
set -euo pipefail
cd "$(dirname "$0")/.."

SUBS=${1:-100}
MSGS=${2:-40000}
SIZE=${3:-128}
REPS=${4:-3}
HALF=$((SUBS / 2))
BIN=target/release/shardcast
OUT=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$OUT"
}
trap cleanup EXIT

cargo build --release --quiet
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" serve -a 127.0.0.1 -p "$PORT" 2>"$OUT/server.log" &
SERVER=$!
PIDS+=("$SERVER")
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done
URL="nats://127.0.0.1:$PORT"
rate() { python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["sub_msgs_per_s"]))' "$1"; }
lost() { python3 -c 'import json,sys; print(sum(json.load(open(f))["lost"] for f in sys.argv[1:]))' "$@"; }

one=()
two=()
for rep in $(seq "$REPS"); do
  "$BIN" bench pubsub --url "$URL" --subs "$SUBS" --msgs "$MSGS" --size "$SIZE" --json >"$OUT/one.json"
  one+=("$(rate "$OUT/one.json")")
  echo "rep $rep one process:  ${one[-1]} deliveries/s, lost $(lost "$OUT/one.json")"

  for half in a b; do
    "$BIN" bench sub --url "$URL" --subs "$HALF" --msgs "$MSGS" --size "$SIZE" \
      --subject "bench" --timeout 2s --json >"$OUT/$half.json" 2>"$OUT/$half.err" &
    PIDS+=("$!")
  done
  # Publish once both subscriber processes said they are ready.
  for _ in $(seq 200); do
    [ "$(cat "$OUT/a.err" "$OUT/b.err" 2>/dev/null | grep -c 'subscribers ready')" -ge 2 ] && break
    sleep 0.05
  done
  "$BIN" bench pub --url "$URL" --msgs "$MSGS" --size "$SIZE" --json >"$OUT/pub.json"
  wait "${PIDS[-1]}" "${PIDS[-2]}"
  # Both processes received the same stream; their spans overlap, so add their rates.
  sum=$(( $(rate "$OUT/a.json") + $(rate "$OUT/b.json") ))
  two+=("$sum")
  echo "rep $rep two processes: $sum deliveries/s, lost $(lost "$OUT/a.json" "$OUT/b.json")"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "median: one process $(median "${one[@]}") deliveries/s, two processes $(median "${two[@]}") deliveries/s"
echo "(1 → $SUBS × $SIZE B, $MSGS messages, $(nproc) CPUs, shardcast $(git rev-parse --short HEAD))"
