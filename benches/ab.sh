#!/usr/bin/env bash
# ab.sh: two shardcast builds side by side in one run, for a change on the hot path.
#
#   benches/ab.sh [--reps N] [--md FILE] [--shards N] [--old-config F] [--new-config F] OLD_BINARY NEW_BINARY [ENTRY ...]
#
#   OLD_BINARY, NEW_BINARY  two `shardcast` executables (e.g. a copy of target/release/shardcast
#                           built before the change, and the one built after)
#   ENTRY                   matrix entries of benches/compare.sh to run (default: the fan-out
#                           entries the cost bar is about: fanout-s100-b128 fanout-s1000-b128);
#                           fanout-sN-bM means 1 publisher, N subscribers, M-byte messages;
#                           stalled-N means 50 subscribers and N more that never read, 512 B
#                           (deliveries/s is then the 50 healthy subscribers' rate)
#   --reps N                repetitions (default 5); the two builds alternate: OLD NEW OLD NEW …
#   --md FILE               also write the table to FILE (markdown)
#   --old-config FILE, --new-config FILE
#                           run that build with `-c FILE` (the same binary twice with two
#                           configurations compares a setting: e.g. monitoring.latency off/on)
#   --shards N              run both servers with --shards N (default: one per CPU). With
#                           one subscriber, which shard it lands on (the publisher's or not)
#                           changes the cost per delivery from run to run; --shards 1 removes
#                           that and compares the per-message path alone
#
# Each run starts a fresh server on a free loopback port, drives it with NEW_BINARY's
# `shardcast bench` (the same generator for both), reads the server's CPU time from /proc
# (`--server-pid`), stops it with SIGTERM by its PID and waits for it. Prints, per entry,
# the median (min–max) of server CPU µs per delivery and of deliveries/s for each build, and
# the ratio NEW/OLD of the medians. The machine is noisy: compare ratios, not absolutes.
set -euo pipefail

REPS=5
MD=
SHARDS=()
OLD_CFG=()
NEW_CFG=()
while (($#)); do
    case $1 in
        --reps) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || { echo "--reps needs a positive integer" >&2; exit 1; }
            REPS=$2; shift 2 ;;
        --md) [[ -n ${2:-} ]] || { echo "--md needs a file" >&2; exit 1; }; MD=$2; shift 2 ;;
        --shards) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || { echo "--shards needs a positive integer" >&2; exit 1; }
            SHARDS=(--shards "$2"); shift 2 ;;
        --old-config) [[ -f ${2:-} ]] || { echo "--old-config needs a file" >&2; exit 1; }
            OLD_CFG=(-c "$2"); shift 2 ;;
        --new-config) [[ -f ${2:-} ]] || { echo "--new-config needs a file" >&2; exit 1; }
            NEW_CFG=(-c "$2"); shift 2 ;;
        -h | --help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) break ;;
    esac
done
(($# >= 2)) || { sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 1; }
OLD=$1 NEW=$2
shift 2
ENTRIES=("$@")
((${#ENTRIES[@]})) || ENTRIES=(fanout-s100-b128 fanout-s1000-b128)
for bin in "$OLD" "$NEW"; do
    [[ -x $bin ]] || { echo "not an executable: $bin" >&2; exit 1; }
done

# Bench arguments of a matrix entry, as benches/compare.sh builds them.
entry_args() {
    if [[ $1 =~ ^fanout-s([0-9]+)-b([0-9]+)$ ]]; then
        local subs=${BASH_REMATCH[1]} size=${BASH_REMATCH[2]} msgs
        msgs=$((4000000 / subs))
        ((msgs >= 4000)) || msgs=4000
        echo "pubsub --pubs 1 --subs $subs --size $size --msgs $msgs --threads 2"
    elif [[ $1 =~ ^stalled-([0-9]+)$ ]]; then
        echo "pubsub --subs 50 --msgs 150000 --size 512 --stalled ${BASH_REMATCH[1]}"
    else
        echo "unknown entry $1 (expected fanout-sN-bM or stalled-N)" >&2
        exit 1
    fi
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

RESULTS=$(mktemp)
trap 'rm -f "$RESULTS"' EXIT
run_one() { # label binary entry [config args]
    local label=$1 bin=$2 entry=$3 port log spid out
    local cfg=("${@:4}")
    port=$(free_port)
    log=$(mktemp)
    "$bin" serve "${cfg[@]}" -a 127.0.0.1 -p "$port" "${SHARDS[@]}" >"$log" 2>&1 &
    spid=$!
    for _ in $(seq 1 200); do
        grep -q "shardcast listening" "$log" && break
        kill -0 "$spid" 2>/dev/null || break
        sleep 0.05
    done
    # shellcheck disable=SC2046
    out=$("$NEW" bench $(entry_args "$entry") --url "nats://127.0.0.1:$port" \
        --server-pid "$spid" --json 2>>"$log") || out=
    kill -TERM "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    rm -f "$log"
    [[ -n $out ]] || { echo "$label $entry: the run failed" >&2; return; }
    python3 - "$label" "$entry" "$out" >>"$RESULTS" <<'EOF'
import json, sys
label, entry, out = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
print(json.dumps({"label": label, "entry": entry,
                  "cpu_us": out["server"]["cpu_us_per_msg"],
                  "rate": out["sub_msgs_per_s"], "lost": out["lost"]}))
EOF
}

for rep in $(seq 1 "$REPS"); do
    for entry in "${ENTRIES[@]}"; do
        echo "rep $rep/$REPS $entry" >&2
        run_one old "$OLD" "$entry" "${OLD_CFG[@]}"
        run_one new "$NEW" "$entry" "${NEW_CFG[@]}"
    done
done

python3 - "$RESULTS" "$OLD" "$NEW" "$REPS" "$MD" "${SHARDS[1]:-}" <<'EOF'
import json, statistics, sys
path, old, new, reps, md, shards = sys.argv[1:7]
shards = f", --shards {shards}" if shards else ""
rows = [json.loads(l) for l in open(path)]
def fmt(v, unit):
    return f"{v:.3f}" if unit == "us" else f"{v/1e6:.2f} M"
out = [f"Old: `{old}`; new: `{new}`; {reps} alternating reps per entry{shards}; median (min–max).", "",
       "| entry | metric | old | new | new/old |", "|---|---|---|---|---|"]
for entry in dict.fromkeys(r["entry"] for r in rows):
    for key, name, unit in (("cpu_us", "server CPU µs per delivery", "us"), ("rate", "deliveries/s", "rate")):
        cell = {}
        for label in ("old", "new"):
            vs = [r[key] for r in rows if r["entry"] == entry and r["label"] == label]
            cell[label] = (statistics.median(vs), min(vs), max(vs), len(vs)) if vs else None
        if not (cell["old"] and cell["new"]):
            out.append(f"| `{entry}` | {name} | missing runs | | |")
            continue
        o, n = cell["old"], cell["new"]
        out.append(f"| `{entry}` | {name} | {fmt(o[0], unit)} ({fmt(o[1], unit)}–{fmt(o[2], unit)}) | "
                   f"{fmt(n[0], unit)} ({fmt(n[1], unit)}–{fmt(n[2], unit)}) | {n[0]/o[0]:.2f}× |")
lost = sum(r["lost"] for r in rows)
out += ["", f"Messages lost over all runs: {lost}."]
text = "\n".join(out) + "\n"
print(text)
if md:
    open(md, "w").write(text)
EOF
