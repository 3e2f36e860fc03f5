#!/usr/bin/env bash
# compare.sh: shardcast against nats-server (and, for IRC, ngircd) on this machine, with the
# same load generator (`shardcast bench`) and the same matrix, then docs/benchmarks.md and its
# charts.
#
#   benches/compare.sh [--quick] [--reps N] [--only REGEX] [--out DIR] [--md FILE] [--img DIR]
#                      [--no-build]
#
#   --quick      1 rep and a reduced matrix (a smoke run of a few minutes)
#   --reps N     repetitions of the whole matrix (default 3)
#   --out DIR    raw results (default target/compare; an existing one is renamed DIR.<time>)
#   --md FILE    report to write (default docs/benchmarks.md)
#   --img DIR    charts to write (default docs/img)
#   --no-build   use target/release/shardcast as it is instead of `cargo build --release`
#   --only REGEX run only the entries whose id matches REGEX (bash =~, e.g. '^irc-'), skip
#                iperf3, and update only those entries' sections of --md (report.py --splice)
#
# Each rep measures the loopback ceiling with iperf3, then runs every matrix entry against
# shardcast, then nats-server (A B A B ...): a fresh server process on a fresh free port per
# run, stopped with SIGTERM by its own PID and waited for. Bench output goes to
# `--csv $OUT/results.csv` with `--label shardcast|nats-server`; each server also serves
# HTTP monitoring on a free port, which the bench reads (`--monitor`) for what the server
# dropped. The flow-control entries (ratelimit, policy-*) run shardcast alone, with the
# configuration they name (written to $OUT/configs/).
#
# The IRC entries (irc-100, irc-1000: S members in one channel, one publisher) run shardcast
# (`--irc PORT`, its NATS port publishing to the channel's subject) against ngircd (a
# loopback configuration written to $OUT/configs/, an IRC publisher that is an IRC operator
# with user mode +F, so ngircd does not throttle it).
#
# Outputs in $OUT:
#   machine.txt  the machine, tool versions, shardcast commit and this command line
#   results.csv  one row per completed bench run, appended by `shardcast bench --csv`
#   runs.csv     one row per attempted run: run,entry,server,rep,status,row,server_rc,log
#                  status     ok | bench-exit-N (124: timed out) | no-row | rows-N |
#                             server-failed (not ready in 10 s) | server-died (during the run)
#                  row        the 1-based data row of results.csv this run appended (empty
#                             when it appended none); report.py joins on it, so a failed run
#                             never shifts the rows of the runs after it
#                  server_rc  the server's exit status after SIGTERM (137 = needed SIGKILL)
#                  log        the bench's human output, relative to $OUT
#   iperf3.csv   rep,gbit_per_s
#   logs/        bench output, server logs, iperf3 JSON, latency histograms (*.hist)
#
# A run that fails is recorded in runs.csv and logs/ and the campaign goes on; the report
# shows its entry as failed. Exit status: 0 when every run succeeded, 3 when some failed
# (the report is still written), 1 on a setup error.
#
# Environment: BENCH_TIMEOUT_S (default 600) bounds one bench run; SETTLE_S (default 1) is
# the pause between runs.

set -euo pipefail

CALLER_PWD=$PWD
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CMDLINE=$(printf '%q ' "$0" "$@")
CMDLINE=${CMDLINE% }

QUICK=0
REPS=3
REPS_SET=0
OUT=$ROOT/target/compare
MD=$ROOT/docs/benchmarks.md
IMG=$ROOT/docs/img
BUILD=1
ONLY=
BENCH_TIMEOUT_S=${BENCH_TIMEOUT_S:-600}
SETTLE_S=${SETTLE_S:-1}
READY_TIMEOUT_S=10
FD_MIN=65536
SERVERS=(shardcast nats-server)
IRC_SERVERS=(shardcast ngircd)
# The IRC publisher's operator account on ngircd (loopback only).
IRC_OPER=bench:bench

# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
usage() { sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit "${1:-1}"; }

while (($#)); do
    case $1 in
        --quick) QUICK=1 ;;
        --reps) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--reps needs a positive integer"
            REPS=$2; REPS_SET=1; shift ;;
        --out) [[ -n ${2:-} ]] || die "--out needs a directory"; OUT=$(abspath "$2"); shift ;;
        --md) [[ -n ${2:-} ]] || die "--md needs a file"; MD=$(abspath "$2"); shift ;;
        --img) [[ -n ${2:-} ]] || die "--img needs a directory"; IMG=$(abspath "$2"); shift ;;
        --no-build) BUILD=0 ;;
        --only) [[ -n ${2:-} ]] || die "--only needs a regular expression"; ONLY=$2; shift ;;
        -h | --help) usage 0 ;;
        *) log "unknown argument: $1"; usage 1 ;;
    esac
    shift
done
if ((QUICK && !REPS_SET)); then REPS=1; fi
cd "$ROOT"
# Debian installs the daemons (nats-server, ngircd) in /usr/sbin.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

# Matrix sizes (the entries themselves are listed further down).
if ((QUICK)); then
    FANOUT_SUBS=(1 100) FANOUT_SIZES=(128)
    LAT_DURATION=2s OVERLOAD_DURATION=1s CONNS=1000 STALLED_MSGS=30000 IPERF_S=1
    RATELIMIT=100000 RATELIMIT_DURATION=2s
else
    FANOUT_SUBS=(1 10 100 1000) FANOUT_SIZES=(16 128 1024)
    LAT_DURATION=5s OVERLOAD_DURATION=3s CONNS=10000 STALLED_MSGS=150000 IPERF_S=3
    RATELIMIT=100000 RATELIMIT_DURATION=3s
fi
# IRC: members in one channel; messages so that each run delivers about 4 M lines.
IRC_MEMBERS=(100 1000)
IRC_DELIVERIES=4000000

# --- setup ---------------------------------------------------------------------------

# Sets PY to a python3 that can import matplotlib, or to python3 (report without charts).
pick_python() {
    PY=python3
    command -v python3 >/dev/null || die "python3 is required (for benches/report.py)"
    if python3 -c 'import matplotlib' 2>/dev/null; then return; fi
    log "installing matplotlib (pip)"
    if python3 -m pip install --quiet matplotlib >/dev/null 2>&1 &&
        python3 -c 'import matplotlib' 2>/dev/null; then
        return
    fi
    if apt_install python3-matplotlib && /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
        PY=/usr/bin/python3
        return
    fi
    log "warning: matplotlib unavailable: the report will have no charts"
}

# Data rows in results.csv (lines minus the header).
csv_rows() {
    local n
    if [[ -s $RESULTS ]]; then
        n=$(wc -l <"$RESULTS")
        echo $((n - 1))
    else
        echo 0
    fi
}

# "name=value ..." of a few columns of data row $1 of results.csv, for the progress line.
row_summary() {
    awk -F, -v row="$1" '
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        NR == row + 1 {
            n = split("sub_msgs_per_s lat_p99_us lost rss_per_conn_bytes server_cpu_us_per_msg", names, " ")
            for (j = 1; j <= n; j++)
                if ((names[j] in col) && $col[names[j]] != "") printf "%s=%s ", names[j], $col[names[j]]
        }' "$RESULTS"
}

need_cmd nats-server nats-server
need_cmd iperf3 iperf3
pick_python

BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/shardcast
if ((BUILD)); then
    log "cargo build --release"
    cargo build --release
fi
[[ -x $BIN ]] || die "$BIN not found (build it, or drop --no-build)"
"$BIN" bench --help >/dev/null 2>&1 || die "$BIN has no \`bench\` subcommand"

# Open files: the server and the generator each hold one descriptor per connection. Ask for
# FD_MIN; settle for the hard limit when it is lower but still covers the matrix.
if ! raise_limit n "$FD_MIN"; then
    ulimit -Sn "$(ulimit -Hn)"
    fd_needed=$((CONNS + 1024))
    if [[ $(ulimit -Sn) != unlimited ]] && (($(ulimit -Sn) < fd_needed)); then
        die "the open-files limit is $(ulimit -Sn) and cannot be raised (hard limit); the idle entry needs $fd_needed: raise it (limits.conf, or ulimit -Hn as root)"
    fi
    log "warning: open-files limit $(ulimit -Sn), not $FD_MIN (the hard limit); enough for $CONNS connections"
fi
if ! raise_limit l 65536 && ((EUID != 0)); then
    log "warning: cannot raise the locked-memory limit (ulimit -l is $(ulimit -Sl) KiB); shardcast may refuse to start"
fi

if [[ -e $OUT ]] && [[ -n $(ls -A "$OUT" 2>/dev/null) ]]; then
    old=$OUT.$(date +%Y%m%d-%H%M%S)
    log "keeping the previous campaign: $OUT -> $old"
    mv "$OUT" "$old"
fi
mkdir -p "$OUT/logs"
RESULTS=$OUT/results.csv
RUNS=$OUT/runs.csv
IPERF=$OUT/iperf3.csv
echo "run,entry,server,rep,status,row,server_rc,log" >"$RUNS"
echo "rep,gbit_per_s" >"$IPERF"

# --- the machine -----------------------------------------------------------------------

cpu_model() {
    local m
    m=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n1)
    [[ -n $m ]] || m=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n1)
    printf '%s\n' "${m:-unknown}"
}

commit=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
    commit="$commit (with uncommitted changes)"
fi
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "command: $CMDLINE"
    if ((QUICK)); then echo "reps: $REPS (quick matrix)"; else echo "reps: $REPS"; fi
    echo "cpus (nproc): $(nproc)"
    echo "cpu model: $(cpu_model)"
    echo "kernel: $(uname -srm)"
    echo "memory: $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    if [[ -r /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor ]]; then
        echo "cpufreq governor: $(cat /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor)"
    fi
    echo "shardcast commit: $commit"
    echo "rustc: $(rustc --version 2>/dev/null || echo unknown)"
    echo "nats-server: $(nats-server --version 2>&1 | head -n1)"
    echo "iperf3: $(iperf3 --version 2>&1 | head -n1)"
    echo "open files limit: $(ulimit -Sn)"
    echo "load generator: shardcast bench on the same machine (it shares the CPUs with the server)"
} >"$OUT/machine.txt"
log "machine: $(nproc) CPUs, $(cpu_model), commit ${commit:0:12}"

# --- the matrix: entry ids and `shardcast bench` arguments, in run order ---------------

ENTRY_IDS=()
ENTRY_ARGS=()
ENTRY_CFG=()
ENTRY_SERVERS=()
# add_entry ID BENCH-ARGS [CONFIG-TOML [SERVERS]]: shardcast runs with CONFIG-TOML (written
# to $OUT/configs/ID.toml) when given; SERVERS defaults to both. With --only, an entry whose
# ID does not match is left out.
add_entry() {
    if [[ -n $ONLY ]] && ! [[ $1 =~ $ONLY ]]; then return 0; fi
    ENTRY_IDS+=("$1")
    ENTRY_ARGS+=("$2")
    local cfg=
    if [[ -n ${3:-} ]]; then
        cfg=$OUT/configs/$1.toml
        mkdir -p "$OUT/configs"
        printf '%b' "$3" >"$cfg"
    fi
    ENTRY_CFG+=("$cfg")
    ENTRY_SERVERS+=("${4:-${SERVERS[*]}}")
}

for subs in "${FANOUT_SUBS[@]}"; do
    for size in "${FANOUT_SIZES[@]}"; do
        msgs=$((4000000 / subs))
        ((msgs >= 4000)) || msgs=4000
        add_entry "fanout-s$subs-b$size" "pubsub --pubs 1 --subs $subs --size $size --msgs $msgs --threads 2"
    done
done
add_entry latency "latency --subs 100 --rate 10000 --duration $LAT_DURATION --size 128"
add_entry idle "conns --subs $CONNS --duration 2s"
add_entry stalled-0 "pubsub --subs 50 --msgs $STALLED_MSGS --size 512 --stalled 0"
add_entry stalled-3 "pubsub --subs 50 --msgs $STALLED_MSGS --size 512 --stalled 3"
add_entry overload "pubsub --pubs 2 --subs 100 --subjects 3 --size 128 --duration $OVERLOAD_DURATION"
# Flow control, shardcast alone: a publisher limited to RATELIMIT msgs/s (read by one
# subscriber), and stalled-3 under the two other slow-consumer policies.
add_entry "ratelimit-$RATELIMIT" "pubsub --pubs 1 --subs 1 --size 128 --duration $RATELIMIT_DURATION" \
    "[rate_limit]\nmsgs_per_sec = $RATELIMIT\n" shardcast
add_entry policy-drop_new "pubsub --subs 50 --msgs $STALLED_MSGS --size 512 --stalled 3" \
    "[slow_consumer]\npolicy = \"drop_new\"\n" shardcast
add_entry policy-stall_publishers "pubsub --subs 50 --msgs $STALLED_MSGS --size 512 --stalled 3" \
    "[slow_consumer]\npolicy = \"stall_publishers\"\n" shardcast
# IRC: S members in one channel, one publisher as fast as it can (see the header).
for members in "${IRC_MEMBERS[@]}"; do
    add_entry "irc-$members" \
        "irc --subs $members --msgs $((IRC_DELIVERIES / members)) --size 128 --threads 2" "" \
        "${IRC_SERVERS[*]}"
done
((${#ENTRY_IDS[@]})) || die "--only '$ONLY' matches no entry"
if [[ " ${ENTRY_SERVERS[*]} " == *" ngircd "* ]]; then
    need_cmd ngircd ngircd
    echo "ngircd: $(ngircd --version 2>&1 | head -n1)" >>"$OUT/machine.txt"
fi

# --- runs ------------------------------------------------------------------------------

# Writes a loopback-only ngircd configuration for port $2 to $1, its PID file in the scratch
# directory $3 (ngircd drops from root to nobody before writing it).
ngircd_config() {
    local conf=$1 port=$2 scratch=$3
    chmod 777 "$scratch"
    cat >"$conf" <<EOF
[Global]
Name = irc.bench.local
Info = shardcast benches/compare.sh peer
Listen = 127.0.0.1
Ports = $port
AdminInfo1 = shardcast benches/compare.sh
AdminInfo2 = loopback only
AdminEMail = bench@localhost
PidFile = $scratch/ngircd.pid
MotdPhrase = benchmark

[Limits]
# Every member comes from 127.0.0.1 and there is one channel: no connection or join limits.
MaxConnections = 0
MaxConnectionsIP = 0
MaxJoins = 0
MaxNickLength = 30
# No keepalive PINGs during a run.
PingTimeout = 600
PongTimeout = 600

[Options]
DNS = no
Ident = no
PAM = no

[Operator]
# The bench's IRC publisher: OPER, then user mode +F (no flood throttling).
Name = ${IRC_OPER%%:*}
Password = ${IRC_OPER#*:}
EOF
}

RUN=0
FAILED=0
TOTAL=0
for servers in "${ENTRY_SERVERS[@]}"; do
    read -ra list <<<"$servers"
    TOTAL=$((TOTAL + REPS * ${#list[@]}))
done

# One run: fresh server on a fresh port, one bench invocation, server stopped.
run_one() { # entry server config rep bench-args...
    local entry=$1 server=$2 cfg=$3 rep=$4
    shift 4
    RUN=$((RUN + 1))
    local tag port spid status row="" rc=0 before after server_rc=""
    tag=$(printf '%03d-%s-%s-r%s' "$RUN" "$entry" "$server" "$rep")
    local slog=$OUT/logs/$tag.server.log blog=$OUT/logs/$tag.bench.txt
    local extra=()
    [[ $entry == latency ]] && extra=(--hist "$OUT/logs/$tag.hist")
    port=$(free_port)
    local mport
    mport=$(free_port)
    local cfg_args=()
    [[ -n $cfg ]] && cfg_args=(-c "$cfg")
    # IRC entries: shardcast also listens for IRC (its NATS port publishes); ngircd is IRC only.
    local irc_port= irc_serve=() scratch=
    if [[ $entry == irc-* ]]; then
        case $server in
            shardcast) irc_port=$(free_port)
                irc_serve=(--irc "$irc_port")
                extra+=(--irc-url "127.0.0.1:$irc_port" --irc-publisher nats) ;;
            *) extra+=(--irc-url "127.0.0.1:$port" --irc-publisher irc --irc-oper "$IRC_OPER") ;;
        esac
    fi
    log "[$RUN/$TOTAL] rep $rep $entry $server (port $port)"
    case $server in
        shardcast) start_bg "$slog" "$BIN" serve ${cfg_args[@]+"${cfg_args[@]}"} -a 127.0.0.1 -p "$port" -m "$mport" \
            ${irc_serve[@]+"${irc_serve[@]}"} ;;
        nats-server) start_bg "$slog" nats-server -a 127.0.0.1 -p "$port" -m "$mport" ;;
        ngircd) scratch=$(mktemp -d /tmp/compare-ngircd.XXXXXX)
            mkdir -p "$OUT/configs"
            ngircd_config "$OUT/configs/$tag.ngircd.conf" "$port" "$scratch"
            start_bg "$slog" ngircd -n -f "$OUT/configs/$tag.ngircd.conf" ;;
        *) die "unknown server $server" ;;
    esac
    [[ $server == ngircd ]] || extra+=(--monitor "http://127.0.0.1:$mport")
    spid=$BG_PID
    local ready_log=
    [[ $server == shardcast ]] && ready_log=$slog
    if ! wait_ready "$port" "$spid" "$ready_log" ||
        { [[ -n $irc_port ]] && ! wait_ready "$irc_port" "$spid" "$ready_log"; }; then
        status="server-failed"
        echo "server not ready on port $port; see $(basename "$slog")" >"$blog"
    else
        before=$(csv_rows)
        {
            printf 'command:'
            printf ' %q' "$BIN" bench "$@" --url "nats://127.0.0.1:$port" --server-pid "$spid" \
                --label "$server" --csv "$RESULTS" ${extra[@]+"${extra[@]}"}
            printf '\n\n'
        } >"$blog"
        timeout --kill-after=10 "$BENCH_TIMEOUT_S" "$BIN" bench "$@" --url "nats://127.0.0.1:$port" \
            --server-pid "$spid" --label "$server" --csv "$RESULTS" ${extra[@]+"${extra[@]}"} \
            >>"$blog" 2>&1 </dev/null &
        local bpid=$!
        PIDS+=("$bpid")
        wait "$bpid" || rc=$?
        forget_pid "$bpid"
        after=$(csv_rows)
        if ((rc != 0)); then
            status=bench-exit-$rc
            ((rc != 124)) || log "bench timed out after ${BENCH_TIMEOUT_S} s"
        elif ((after == before)); then
            status=no-row
        elif ((after != before + 1)); then
            status=rows-$((after - before))
        else
            status=ok
        fi
        if ((after == before + 1)); then row=$after; fi
        if [[ $status == ok ]] && ! alive "$spid"; then status="server-died"; fi
    fi
    stop_pid "$spid"
    server_rc=$STOP_RC
    [[ -z $scratch ]] || rm -rf "$scratch"
    printf '%s,%s,%s,%s,%s,%s,%s,%s\n' "$RUN" "$entry" "$server" "$rep" "$status" "$row" \
        "$server_rc" "logs/$tag.bench.txt" >>"$RUNS"
    if [[ $status == ok ]]; then
        log "    ok $(row_summary "$row")"
    else
        FAILED=$((FAILED + 1))
        log "    FAILED: $status (see $blog)"
    fi
    # nats-server 2.9 exits 1 after SIGTERM by design; shardcast should exit 0.
    if [[ $server == shardcast ]] && ((server_rc != 0)); then
        log "    note: shardcast exited with status $server_rc after SIGTERM (see $slog)"
    fi
    sleep "$SETTLE_S"
}

# The loopback TCP ceiling for one stream: iperf3 -s -1 in the background, one client.
run_iperf() { # rep
    local rep=$1 port spid json=$OUT/logs/iperf3-r$1.json gbit i
    port=$(free_port)
    log "rep $rep iperf3 (port $port, ${IPERF_S} s)"
    start_bg "$OUT/logs/iperf3-r$rep.server.log" iperf3 -s -1 -p "$port"
    spid=$BG_PID
    if wait_ready "$port" "$spid"; then
        if iperf3 -c 127.0.0.1 -p "$port" -t "$IPERF_S" -J >"$json" 2>"$OUT/logs/iperf3-r$rep.client.err" &&
            gbit=$(python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
print("%.3f" % (d["end"]["sum_received"]["bits_per_second"] / 1e9))' "$json"); then
            echo "$rep,$gbit" >>"$IPERF"
            log "    $gbit Gbit/s"
        else
            log "    iperf3 FAILED (see $json)"
        fi
    fi
    for ((i = 0; i < 50; i++)); do # -1: it exits after its one client
        alive "$spid" || break
        sleep 0.1
    done
    stop_pid "$spid"
}

for ((rep = 1; rep <= REPS; rep++)); do
    [[ -n $ONLY ]] || run_iperf "$rep"
    for i in "${!ENTRY_IDS[@]}"; do
        read -ra bench_args <<<"${ENTRY_ARGS[$i]}"
        read -ra servers <<<"${ENTRY_SERVERS[$i]}"
        for server in "${servers[@]}"; do
            run_one "${ENTRY_IDS[$i]}" "$server" "${ENTRY_CFG[$i]}" "$rep" "${bench_args[@]}"
        done
    done
done

# --- report ----------------------------------------------------------------------------

log "report: $MD, charts in $IMG"
mkdir -p "$(dirname "$MD")" "$IMG"
splice=()
# Part of the matrix: replace only its sections, keep the rest of the report as it is.
[[ -z $ONLY ]] || splice=(--splice)
"$PY" "$ROOT/benches/report.py" --results "$RESULTS" --entries "$RUNS" --iperf "$IPERF" \
    --machine "$OUT/machine.txt" --md "$MD" --img "$IMG" --notes "$ROOT/benches/benchmark-notes.md" \
    ${splice[@]+"${splice[@]}"} || die "report.py failed; the raw results are in $OUT"

if ((FAILED)); then
    log "$FAILED of $TOTAL runs failed (see $RUNS and $OUT/logs)"
    exit 3
fi
log "all $TOTAL runs ok; raw results in $OUT"
