#!/usr/bin/env bash
# logs.sh: the log-ingest campaign. `shardcast bench logs` sends the same logs over each
# input of shardcast (nats, tcp, syslog-tcp, syslog-udp), routed by the same 20 rules,
# every routed subject watched by 3 NATS subscribers; and over syslog TCP and UDP to
# rsyslog (Debian), whose configuration does the same routing (`bench logs --print-config
# rsyslog`: 20 RainerScript filters, each forwarding with 3 omfwd actions to a TCP sink
# the bench counts). Then the table for docs/benchmarks.md.
#
#   benches/logs.sh [--reps N] [--msgs N] [--out DIR] [--md FILE] [--no-build]
#
#   --reps N     repetitions (default 3); each runs every input of shardcast, then rsyslog
#   --msgs N     logs per run (default 300000)
#   --out DIR    results (default target/logs-bench; an existing one is renamed DIR.<time>)
#   --md FILE    where the section goes (default docs/benchmarks.md; replaced in place)
#   --no-build   use target/release/shardcast as it is
#
# A fresh server process on free ports per run, stopped with SIGTERM by its own PID. Output
# in $OUT: results.csv (one row per run, `bench --csv`), machine.txt, logs/, configs/, and
# section.md (medians over the reps, from benches/report_logs.py), spliced into --md.

set -euo pipefail

CALLER_PWD=$PWD
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPS=3
MSGS=300000
OUT=$ROOT/target/logs-bench
MD=$ROOT/docs/benchmarks.md
BUILD=1
READY_TIMEOUT_S=10
BENCH_TIMEOUT_S=${BENCH_TIMEOUT_S:-300}
# Each input as fast as it takes logs; syslog-udp also at a fixed rate (UDP has no
# push-back: a sender faster than the server loses datagrams, counted).
INPUTS=(nats tcp syslog-tcp syslog-udp syslog-udp@${UDP_RATE:-100000})
RSYSLOG_INPUTS=(syslog-tcp syslog-udp syslog-udp@${UDP_RATE:-100000})

# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
usage() { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit "${1:-1}"; }

while (($#)); do
    case $1 in
        --reps) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--reps needs a positive integer"
            REPS=$2; shift ;;
        --msgs) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--msgs needs a positive integer"
            MSGS=$2; shift ;;
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
need_cmd rsyslogd rsyslog
need_cmd python3 python3
if ((BUILD)); then
    log "building shardcast (release)"
    cargo build --release --quiet
fi
BIN=$ROOT/target/release/shardcast
[[ -x $BIN ]] || die "$BIN is missing: build it (cargo build --release)"
if [[ -e $OUT ]]; then mv "$OUT" "$OUT.$(date +%Y%m%d-%H%M%S)"; fi
mkdir -p "$OUT/logs" "$OUT/configs"
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "cpus: $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "kernel: $(uname -r)"
    echo "shardcast: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "rsyslog: $(rsyslogd -v | head -n1)"
    echo "msgs: $MSGS, reps: $REPS"
} >"$OUT/machine.txt"

"$BIN" bench logs --print-config shardcast >"$OUT/configs/rules.toml"

# run_shardcast REP INPUT[@RATE]: one shardcast process with every log port, one bench run.
run_shardcast() {
    local rep=$1 input=${2%@*} rate=0 port mport tport stport suport cfg slog addr
    [[ $2 == *@* ]] && rate=${2#*@}
    port=$(free_port) mport=$(free_port) tport=$(free_port) stport=$(free_port)
    suport=$(free_port)
    cfg=$OUT/configs/shardcast-$rep-$2.toml
    {
        printf 'host = "127.0.0.1"\nport = %s\n[monitoring]\nport = %s\n' "$port" "$mport"
        sed "s/^enabled = true$/enabled = true\ntcp_port = $tport\nsyslog_tcp_port = $stport\nsyslog_udp_port = $suport\nsyslog_udp_buffer = \"4MiB\"/" \
            "$OUT/configs/rules.toml"
    } >"$cfg"
    slog=$OUT/logs/shardcast-$rep-$2.server.log
    start_bg "$slog" "$BIN" serve -c "$cfg"
    local pid=$BG_PID
    wait_ready "$port" "$pid" "$slog" || { stop_pid "$pid"; return 1; }
    case $input in
        tcp) addr=127.0.0.1:$tport ;;
        syslog-tcp) addr=127.0.0.1:$stport ;;
        syslog-udp) addr=127.0.0.1:$suport ;;
        nats) addr=127.0.0.1:$tport ;;
    esac
    timeout "$BENCH_TIMEOUT_S" "$BIN" bench logs --url "nats://127.0.0.1:$port" \
        --log-input "$input" --log-addr "$addr" --msgs "$MSGS" --server-pid "$pid" \
        --rate "$rate" --timeout 3s --label shardcast --csv "$OUT/results.csv" \
        >"$OUT/logs/shardcast-$rep-$2.bench.log" 2>&1 ||
        log "shardcast $input rep $rep: bench failed (see logs/)"
    stop_pid "$pid"
}

# run_rsyslog REP INPUT[@RATE]: rsyslogd routing syslog (TCP or UDP) to the bench's sink.
run_rsyslog() {
    local rep=$1 input=${2%@*} rate=0 port sink work cfg rlog pid
    [[ $2 == *@* ]] && rate=${2#*@}
    port=$(free_port) sink=$(free_port)
    work=$OUT/rsyslog-$rep-$2
    mkdir -p "$work"
    cfg=$OUT/configs/rsyslog-$rep-$2.conf
    "$BIN" bench logs --print-config rsyslog --log-addr "127.0.0.1:$port" --log-sink "$sink" |
        sed "s|workDirectory=\"[^\"]*\"|workDirectory=\"$work\"|" >"$cfg"
    rlog=$OUT/logs/rsyslog-$rep-$2.server.log
    start_bg "$rlog" rsyslogd -n -f "$cfg" -i "$work/rsyslogd.pid"
    pid=$BG_PID
    wait_ready "$port" "$pid" || { stop_pid "$pid"; return 1; }
    timeout "$BENCH_TIMEOUT_S" "$BIN" bench logs --log-input "$input" --rate "$rate" \
        --log-addr "127.0.0.1:$port" --log-sink "$sink" --msgs "$MSGS" --server-pid "$pid" \
        --timeout 3s --label rsyslog --csv "$OUT/results.csv" \
        >"$OUT/logs/rsyslog-$rep-$2.bench.log" 2>&1 ||
        log "rsyslog $2 rep $rep: bench failed (see logs/)"
    stop_pid "$pid"
}

for ((rep = 1; rep <= REPS; rep++)); do
    for input in "${INPUTS[@]}"; do
        log "rep $rep/$REPS: shardcast, $input"
        run_shardcast "$rep" "$input" || true
        sleep 1
    done
    for input in "${RSYSLOG_INPUTS[@]}"; do
        log "rep $rep/$REPS: rsyslog, $input"
        run_rsyslog "$rep" "$input" || true
        sleep 1
    done
done
python3 "$ROOT/benches/report_logs.py" "$OUT/results.csv" --machine "$OUT/machine.txt" \
    >"$OUT/section.md"
cat "$OUT/section.md"
python3 "$ROOT/benches/report_logs.py" "$OUT/results.csv" --machine "$OUT/machine.txt" \
    --splice "$MD"
log "results in $OUT, section in $MD"
