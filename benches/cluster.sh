#!/usr/bin/env bash
# cluster.sh: what a cross-node hop costs. Three leaf nodes A, B, C of a 3-member
# nats-server cluster (the hub: hub0, hub1, hub2, full mesh of routes); A dials hub0, B
# hub1, C hub2. The leaves are shardcast nodes (`serve --shards 1` with `[leafnode]`) or,
# side by side in the same run, plain nats-server leaf nodes. Subscribers on B and C (one
# subject), one publisher on A, 128-byte messages: each delivery crosses the leaf link
# A→hub0, the route hub0→hub1/hub2 and the leaf link hub1→B / hub2→C. Two entries: a fixed
# --rate to a few subscribers (latency: the hops, not the fan-out, dominate it) and as fast
# as possible to many (deliveries/s, CPU per delivery). The baseline: the same generator
# processes against one server alone (shardcast / nats-server), same rate and counts.
#
#   benches/cluster.sh [--reps N] [--msgs N] [--rate N] [--rate-subs N] [--subs N]
#                      [--out DIR] [--md FILE] [--no-build]
#
#   --reps N       repetitions (default 5); each runs every entry, shardcast then nats-server
#   --msgs N       messages the publisher sends per run (default 100000)
#   --rate N       the fixed-rate entry's messages/s (default 10000)
#   --rate-subs N  its subscriber connections on B and on C, each (default 5)
#   --subs N       the as-fast-as-possible entry's subscribers on B and on C, each (default 50)
#   --out DIR      results (default target/cluster-bench; an existing one is renamed DIR.<time>)
#   --md FILE      where the section goes (default docs/benchmarks.md; replaced in place)
#   --no-build     use target/release/shardcast as it is
#
# Every process (servers and generators) is started here on free 127.0.0.1 ports, fresh for
# each run, and stopped with SIGTERM by its own PID (on error and interrupt too). Output in
# $OUT: runs.csv (one line per run), runs/<run>/ (the generators' --json and --hist output,
# cpu.txt: utime+stime of every server process before and after), logs/, configs/,
# machine.txt, and section.md (benches/report_cluster.py), spliced into --md.

set -euo pipefail

CALLER_PWD=$PWD
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ARGS=("$@")
REPS=5
MSGS=100000
RATE=10000
RATE_SUBS=5
SUBS=50
SIZE=128
OUT=$ROOT/target/cluster-bench
MD=$ROOT/docs/benchmarks.md
BUILD=1
READY_TIMEOUT_S=10
# How long the hub may take to mesh, the leaves to link up and interest to cross.
TOPOLOGY_TIMEOUT_S=20
BENCH_TIMEOUT_S=${BENCH_TIMEOUT_S:-120}
VARIANTS=(shardcast nats-server)
# topology-entry, in the order they run for each variant.
RUNS=(single-rate single-max cluster-rate cluster-max)
NODES=(node-a node-b node-c)

# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
usage() { sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit "${1:-1}"; }

while (($#)); do
    case $1 in
        --reps) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--reps needs a positive integer"
            REPS=$2; shift ;;
        --msgs) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--msgs needs a positive integer"
            MSGS=$2; shift ;;
        --rate) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--rate needs a positive integer"
            RATE=$2; shift ;;
        --rate-subs) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--rate-subs needs a positive integer"
            RATE_SUBS=$2; shift ;;
        --subs) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--subs needs a positive integer"
            SUBS=$2; shift ;;
        --out) [[ -n ${2:-} ]] || die "--out needs a directory"; OUT=$(abspath "$2"); shift ;;
        --md) [[ -n ${2:-} ]] || die "--md needs a file"; MD=$(abspath "$2"); shift ;;
        --no-build) BUILD=0 ;;
        -h | --help) usage 0 ;;
        *) log "unknown argument: $1"; usage 1 ;;
    esac
    shift
done
cd "$ROOT"
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
need_cmd nats-server nats-server
need_cmd python3 python3
need_cmd timeout coreutils
if ((BUILD)); then
    log "building shardcast (release)"
    cargo build --release --quiet --bin shardcast
fi
BIN=$ROOT/target/release/shardcast
[[ -x $BIN ]] || die "$BIN is missing: build it (cargo build --release --bin shardcast)"
raise_limit n $((4 * SUBS + 256)) || log "cannot raise the open-files limit to $((4 * SUBS + 256))"
if [[ -e $OUT ]]; then mv "$OUT" "$OUT.$(date +%Y%m%d-%H%M%S)"; fi
mkdir -p "$OUT/logs" "$OUT/configs" "$OUT/runs"
CLK_TCK=$(getconf CLK_TCK)
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "command: benches/cluster.sh${ARGS[*]+ ${ARGS[*]}}"
    echo "cpus: $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "kernel: $(uname -r)"
    echo "shardcast: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "nats-server: $(nats-server --version 2>&1 | head -n1)"
    echo "msgs: $MSGS per run, $SIZE B, reps: $REPS"
    echo "fixed rate: $RATE msgs/s to $RATE_SUBS subscribers on B + $RATE_SUBS on C"
    echo "as fast as possible: $SUBS subscribers on B + $SUBS on C"
} >"$OUT/machine.txt"
echo "rep,variant,topology,entry,status,dir" >"$OUT/runs.csv"

# --- helpers --------------------------------------------------------------------------

# free_ports N: N distinct free ports (all bound at once, so they cannot repeat).
free_ports() {
    python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

# start_gen OUT ERR CMD...: a generator in the background, stdout and stderr apart; sets BG_PID.
start_gen() {
    local out=$1 err=$2
    shift 2
    "$@" >"$out" 2>"$err" </dev/null &
    BG_PID=$!
    PIDS+=("$BG_PID")
}

# probe URL EXPR: EXPR (Python, over d = the JSON at URL); prints nothing when unreachable.
probe() {
    python3 -c '
import json, sys, urllib.request
try:
    d = json.load(urllib.request.urlopen(sys.argv[1], timeout=2))
except Exception:
    sys.exit(1)
print(eval(sys.argv[2]))' "$1" "$2" 2>/dev/null || true
}

# wait_until WHAT CMD...: runs CMD every 0.1 s until it succeeds, for TOPOLOGY_TIMEOUT_S.
wait_until() {
    local what=$1 i
    shift
    for ((i = 0; i < TOPOLOGY_TIMEOUT_S * 10; i++)); do
        "$@" && return 0
        sleep 0.1
    done
    log "timed out after ${TOPOLOGY_TIMEOUT_S} s waiting for $what"
    return 1
}

# cpu_ticks PID: utime + stime of the process (all its threads, live and exited), in ticks.
cpu_ticks() {
    local stat f
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo -1; return; }
    read -ra f <<<"${stat##*) }"
    echo $((f[11] + f[12]))
}

# stop_all PID...: SIGTERM to all at once, then each reaped (SIGKILL after 15 s).
stop_all() {
    local p
    for p in "$@"; do if alive "$p"; then kill -TERM "$p" 2>/dev/null || true; fi; done
    for p in "$@"; do stop_pid "$p"; done
}

# --- servers ----------------------------------------------------------------------------
# Each start_* sets SERVER_PID and SERVER_PORT (its client port) and SERVER_HTTP.

SERVER_PID='' SERVER_PORT='' SERVER_HTTP=''

start_shardcast() { # NAME [HUB_LEAF_PORT]: standalone, or a leaf node of the hub
    local name=$1 hub=${2:-} cfg
    read -r SERVER_PORT SERVER_HTTP <<<"$(free_ports 2)"
    cfg=$OUT/configs/$name.toml
    {
        echo 'host = "127.0.0.1"'
        echo "port = $SERVER_PORT"
        echo 'shards = 1'
        echo '[monitoring]'
        echo "port = $SERVER_HTTP"
        if [[ -n $hub ]]; then
            echo '[leafnode]'
            echo "remotes = [\"nats-leaf://127.0.0.1:$hub\"]"
            echo "name = \"$name\""
        fi
    } >"$cfg"
    start_bg "$OUT/logs/$name.log" "$BIN" serve --shards 1 -c "$cfg"
    SERVER_PID=$BG_PID
    wait_ready "$SERVER_PORT" "$SERVER_PID" "$OUT/logs/$name.log"
}

start_nats() { # NAME [HUB_LEAF_PORT]: standalone, or a leaf node of the hub
    local name=$1 hub=${2:-} cfg
    read -r SERVER_PORT SERVER_HTTP <<<"$(free_ports 2)"
    cfg=$OUT/configs/$name.conf
    {
        echo "server_name: $name"
        echo "listen: 127.0.0.1:$SERVER_PORT"
        echo "http: 127.0.0.1:$SERVER_HTTP"
        if [[ -n $hub ]]; then
            echo "leafnodes { remotes: [ { url: \"nats-leaf://127.0.0.1:$hub\" } ] }"
        fi
    } >"$cfg"
    start_bg "$OUT/logs/$name.log" nats-server -c "$cfg"
    SERVER_PID=$BG_PID
    nats_ready "$SERVER_PID" "$OUT/logs/$name.log"
}

# nats_ready PID LOG: nats-server PID logged "Server is ready" (it has bound every port; a
# port someone else took makes it exit instead, which wait_ready alone could miss).
nats_ready() {
    local i
    for ((i = 0; i < READY_TIMEOUT_S * 10; i++)); do
        alive "$1" || { log "nats-server pid $1 exited while starting (see $2)"; return 1; }
        grep -q 'Server is ready' "$2" && return 0
        sleep 0.1
    done
    log "nats-server pid $1 not ready after ${READY_TIMEOUT_S} s (see $2)"
    return 1
}

# The hub: HUB_PIDS, HUB_LEAF (leafnode ports), HUB_HTTP (monitoring ports).
HUB_PIDS=() HUB_LEAF=() HUB_HTTP=()
start_hub() { # TAG
    local tag=$1 i ports=() client=() route=() routes cfg
    read -ra ports <<<"$(free_ports 12)" # in one call, so that none repeats
    client=("${ports[@]:0:3}") route=("${ports[@]:3:3}")
    HUB_LEAF=("${ports[@]:6:3}") HUB_HTTP=("${ports[@]:9:3}")
    routes="nats-route://127.0.0.1:${route[0]}, nats-route://127.0.0.1:${route[1]}, nats-route://127.0.0.1:${route[2]}"
    HUB_PIDS=()
    for i in 0 1 2; do
        cfg=$OUT/configs/$tag-hub$i.conf
        cat >"$cfg" <<EOF
server_name: hub$i
listen: 127.0.0.1:${client[i]}
http: 127.0.0.1:${HUB_HTTP[i]}
cluster { name: sc, listen: 127.0.0.1:${route[i]}, routes: [$routes] }
leafnodes { listen: 127.0.0.1:${HUB_LEAF[i]} }
EOF
        start_bg "$OUT/logs/$tag-hub$i.log" nats-server -c "$cfg"
        HUB_PIDS+=("$BG_PID")
    done
    for i in 0 1 2; do
        nats_ready "${HUB_PIDS[i]}" "$OUT/logs/$tag-hub$i.log" || return 1
    done
    wait_until "the hub's full mesh (2 routes on each member)" hub_meshed
}

hub_meshed() {
    local i
    for i in 0 1 2; do
        [[ $(probe "http://127.0.0.1:${HUB_HTTP[i]}/routez" 'd["num_routes"]') == 2 ]] || return 1
    done
}

hub_leaves() { # N: the hub members together have N leaf connections
    local i n=0 c
    for i in 0 1 2; do
        c=$(probe "http://127.0.0.1:${HUB_HTTP[i]}/leafz" 'd["leafnodes"]')
        n=$((n + ${c:-0}))
    done
    ((n == $1))
}

# Interest from B and C has reached A's hub member: both of hub0's routes carry `bench.0`.
hub0_has_interest() {
    [[ $(probe "http://127.0.0.1:${HUB_HTTP[0]}/routez?subs=1" \
        'sum("bench.0" in (r.get("subscriptions_list") or []) for r in d["routes"])') == 2 ]]
}

# ...and A itself: nats-server lists the subjects its hub sent on the leaf connection;
# shardcast counts the hub's interest keys (one more than before the subscribers came).
a_has_interest() { # VARIANT A_HTTP BASE_INTEREST
    case $1 in
        nats-server) [[ $(probe "http://127.0.0.1:$2/leafz?subs=1" \
            'sum("bench.0" in (l.get("subscriptions_list") or []) for l in d["leafs"])') == 1 ]] ;;
        shardcast) local n
            n=$(probe "http://127.0.0.1:$2/leafz" 'd["leafs"][0]["remote_interest"]')
            [[ -n $n ]] && ((n > $3)) ;;
    esac
}

# A server or the hub that fails to start (a free port taken meanwhile) gets a second try.
start_server_twice() { # START_FN NAME [HUB_LEAF_PORT]
    "$@" && return 0
    stop_all "$SERVER_PID"
    log "$2 did not start; once more on other ports"
    "$@"
}

start_hub_twice() { # TAG
    start_hub "$1" && return 0
    stop_all ${HUB_PIDS[@]+"${HUB_PIDS[@]}"}
    log "the hub did not start; once more on other ports"
    start_hub "$1"
}

# --- one run ------------------------------------------------------------------------------

# run REP VARIANT TOPOLOGY ENTRY: fresh servers, subscribers on B and C, the publisher on A,
# then every server's CPU before/after into the run's directory.
run() {
    local rep=$1 variant=$2 topo=$3 entry=$4 name dir tag i start
    local url_a url_b url_c http_a base=0 roles=() pids=() servers=()
    name=$variant-$topo-$entry-$rep
    dir=$OUT/runs/$name
    tag=$name
    mkdir -p "$dir"
    start=start_shardcast
    [[ $variant == nats-server ]] && start=start_nats
    if [[ $topo == single ]]; then
        if ! start_server_twice "$start" "$tag-server"; then
            stop_all "$SERVER_PID"
            record "$rep" "$variant" "$topo" "$entry" "server did not start" "$dir"
            return 1
        fi
        url_a=nats://127.0.0.1:$SERVER_PORT url_b=$url_a url_c=$url_a
        roles=(server) pids=("$SERVER_PID") servers=("$SERVER_PID")
    else
        start_hub_twice "$tag" || { stop_all ${HUB_PIDS[@]+"${HUB_PIDS[@]}"}
            record "$rep" "$variant" "$topo" "$entry" "hub did not mesh" "$dir"; return 1; }
        servers=("${HUB_PIDS[@]}")
        local node urls=()
        for i in 0 1 2; do
            node=${NODES[i]}
            if ! start_server_twice "$start" "$tag-$node" "${HUB_LEAF[i]}"; then
                stop_all "${servers[@]}" "$SERVER_PID"
                record "$rep" "$variant" "$topo" "$entry" "$node did not start" "$dir"
                return 1
            fi
            roles+=("$node") pids+=("$SERVER_PID") servers+=("$SERVER_PID")
            urls+=("nats://127.0.0.1:$SERVER_PORT")
            [[ $i == 0 ]] && http_a=$SERVER_HTTP
        done
        url_a=${urls[0]} url_b=${urls[1]} url_c=${urls[2]}
        roles+=(hub0 hub1 hub2) pids+=("${HUB_PIDS[@]}")
        if ! wait_until "3 leaf links on the hub" hub_leaves 3; then
            stop_all "${servers[@]}"
            record "$rep" "$variant" "$topo" "$entry" "leaf links not up" "$dir"
            return 1
        fi
        sleep 0.3 # the hub's initial interest (other leaves' $LDS subjects) settles on A
        if [[ $variant == shardcast ]]; then
            base=$(probe "http://127.0.0.1:$http_a/leafz" 'd["leafs"][0]["remote_interest"]')
            base=${base:-0}
        fi
    fi

    local common=(--size "$SIZE" --msgs "$MSGS" --threads 1 --json)
    local sub_b sub_c pub_rc=0 rc_b=0 rc_c=0 status=ok rate=() subs=$SUBS
    if [[ $entry == rate ]]; then
        rate=(--rate "$RATE") subs=$RATE_SUBS
    fi
    start_gen "$dir/sub-b.json" "$dir/sub-b.err" timeout "$BENCH_TIMEOUT_S" "$BIN" bench sub \
        --subs "$subs" --url "$url_b" --hist "$dir/sub-b.hist" --label "$variant" "${common[@]}"
    sub_b=$BG_PID
    start_gen "$dir/sub-c.json" "$dir/sub-c.err" timeout "$BENCH_TIMEOUT_S" "$BIN" bench sub \
        --subs "$subs" --url "$url_c" --hist "$dir/sub-c.hist" --label "$variant" "${common[@]}"
    sub_c=$BG_PID
    # When each condition held, in ms after the subscribers started (ready.txt).
    local t0=${EPOCHREALTIME/./} ok=1
    if wait_until "the subscribers on B and C" subs_ready "$dir"; then
        echo "subscribers_ready_ms $(((${EPOCHREALTIME/./} - t0) / 1000))" >"$dir/ready.txt"
    else
        ok=0
    fi
    if ((ok)) && [[ $topo == cluster ]]; then
        if wait_until "interest on hub0" hub0_has_interest; then
            echo "interest_on_hub0_ms $(((${EPOCHREALTIME/./} - t0) / 1000))" >>"$dir/ready.txt"
        else
            ok=0
        fi
        if ((ok)) && wait_until "interest on A" a_has_interest "$variant" "$http_a" "$base"; then
            echo "interest_on_a_ms $(((${EPOCHREALTIME/./} - t0) / 1000))" >>"$dir/ready.txt"
            [[ $variant == shardcast ]] && echo "a_remote_interest $base -> $(probe \
                "http://127.0.0.1:$http_a/leafz" 'd["leafs"][0]["remote_interest"]')" >>"$dir/ready.txt"
            sleep 0.2
        else
            ok=0
        fi
    fi
    if ((!ok)); then
        stop_all "$sub_b" "$sub_c" "${servers[@]}"
        record "$rep" "$variant" "$topo" "$entry" "subscribers or interest not ready" "$dir"
        return 1
    fi

    local before=() after=() p
    for p in "${pids[@]}"; do before+=("$(cpu_ticks "$p")"); done
    # In the background and waited for, so that a signal to this script is acted on at once.
    start_gen "$dir/pub.json" "$dir/pub.err" timeout "$BENCH_TIMEOUT_S" "$BIN" bench pub \
        --url "$url_a" --label "$variant" ${rate[@]+"${rate[@]}"} "${common[@]}"
    wait "$BG_PID" || pub_rc=$?
    forget_pid "$BG_PID"
    if ((pub_rc != 0)); then
        log "$name: the publisher failed (status $pub_rc, see $dir/pub.err)"
        stop_all "$sub_b" "$sub_c"
        status="publisher failed"
    else
        wait "$sub_b" || rc_b=$?
        forget_pid "$sub_b"
        wait "$sub_c" || rc_c=$?
        forget_pid "$sub_c"
        ((rc_b == 0 && rc_c == 0)) || { status="subscriber failed"; log "$name: a subscriber failed (see $dir/sub-*.err)"; }
    fi
    for p in "${pids[@]}"; do
        after+=("$(cpu_ticks "$p")")
        alive "$p" || { status="a server exited during the run"; log "$name: pid $p exited during the run"; }
    done
    {
        echo "clk_tck $CLK_TCK"
        for i in "${!pids[@]}"; do
            echo "${roles[i]} ${pids[i]} ${before[i]} ${after[i]}"
        done
    } >"$dir/cpu.txt"
    stop_all "${servers[@]}"
    record "$rep" "$variant" "$topo" "$entry" "$status" "$dir"
}

subs_ready() { # DIR
    grep -q 'subscribers ready' "$1/sub-b.err" 2>/dev/null &&
        grep -q 'subscribers ready' "$1/sub-c.err" 2>/dev/null
}

record() { # REP VARIANT TOPOLOGY ENTRY STATUS DIR
    echo "$1,$2,$3,$4,$5,${6#"$OUT"/}" >>"$OUT/runs.csv"
    [[ $5 == ok ]] || log "$2 $3-$4 rep $1: $5"
}

# --- the campaign ---------------------------------------------------------------------------

T0=$SECONDS
for ((rep = 1; rep <= REPS; rep++)); do
    for r in "${RUNS[@]}"; do
        for variant in "${VARIANTS[@]}"; do
            log "rep $rep/$REPS: $variant ${r%-*} ${r#*-}"
            run "$rep" "$variant" "${r%-*}" "${r#*-}" || true
        done
    done
done
log "measured in $((SECONDS - T0)) s"
python3 "$ROOT/benches/report_cluster.py" "$OUT/runs.csv" --machine "$OUT/machine.txt" \
    >"$OUT/section.md"
cat "$OUT/section.md"
python3 "$ROOT/benches/report_cluster.py" "$OUT/runs.csv" --machine "$OUT/machine.txt" \
    --splice "$MD"
log "results in $OUT, section in $MD"
