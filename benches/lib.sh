#!/usr/bin/env bash
# Shared by the benchmark campaigns (compare.sh, logs.sh); sourced, not run. Owns the
# processes a campaign starts (only those are ever signalled, by PID), installing what
# is missing, free ports and readiness. The caller sets READY_TIMEOUT_S and CALLER_PWD.

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
abspath() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$CALLER_PWD/$1" ;; esac; }

# --- processes this script started: the only ones it ever signals ----------------------

PIDS=()
BG_PID=

# Starts "$@" in the background with stdout+stderr to $1's log; sets BG_PID.
start_bg() {
    local out=$1
    shift
    "$@" >"$out" 2>&1 </dev/null &
    BG_PID=$!
    PIDS+=("$BG_PID")
}

forget_pid() {
    local keep=() p
    for p in ${PIDS[@]+"${PIDS[@]}"}; do [[ $p == "$1" ]] || keep+=("$p"); done
    PIDS=(${keep[@]+"${keep[@]}"})
}

# True while the process exists and is not a zombie (kill -0 succeeds on zombies).
alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
}

# SIGTERM, up to 15 s to exit, then SIGKILL; reaps it and sets STOP_RC to its exit status.
stop_pid() {
    local pid=$1 i
    STOP_RC=0
    if alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 150; i++)); do
            alive "$pid" || break
            sleep 0.1
        done
        if alive "$pid"; then
            log "pid $pid still running 15 s after SIGTERM: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || STOP_RC=$?
    forget_pid "$pid"
}

cleanup() {
    local p i
    trap - EXIT INT TERM
    for p in ${PIDS[@]+"${PIDS[@]}"}; do
        if alive "$p"; then kill -TERM "$p" 2>/dev/null || true; fi
    done
    for ((i = 0; i < 50; i++)); do
        local any=0
        for p in ${PIDS[@]+"${PIDS[@]}"}; do if alive "$p"; then any=1; fi; done
        ((any)) || break
        sleep 0.1
    done
    for p in ${PIDS[@]+"${PIDS[@]}"}; do
        if alive "$p"; then kill -KILL "$p" 2>/dev/null || true; fi
        wait "$p" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

apt_install() {
    local pkg=$1 sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null || { log "$pkg is missing and I am not root and have no sudo: install $pkg"; return 1; }
        sudo=(sudo)
    fi
    log "installing $pkg (apt-get)"
    if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null; then
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || true
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null ||
            { log "apt-get install $pkg failed: install $pkg"; return 1; }
    fi
}

need_cmd() { # command package
    command -v "$1" >/dev/null || apt_install "$2" || die "$2 is required"
    command -v "$1" >/dev/null || die "$2 is installed but $1 is not on PATH"
}

# Raises the soft limit (ulimit flag $1) to at least $2, raising the hard limit if allowed.
raise_limit() {
    local flag=$1 want=$2 soft hard
    soft=$(ulimit -S"$flag")
    [[ $soft == unlimited ]] && return 0
    ((soft >= want)) && return 0
    hard=$(ulimit -H"$flag")
    if [[ $hard != unlimited ]] && ((hard < want)); then
        ulimit -H"$flag" "$want" 2>/dev/null || return 1
    fi
    ulimit -S"$flag" "$want" 2>/dev/null
}

# The kernel's choice of a free port on 127.0.0.1 (ephemeral range, so never 4222).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# True when something listens on TCP port $1 (read from /proc: no probe connection, which
# would count as iperf3 -1's one client and as a client in the servers' figures).
listening() {
    local hex
    hex=$(printf '%04X' "$1")
    grep -Eq "^ *[0-9]+: [0-9A-F]+:$hex [0-9A-F]+:[0-9A-F]+ 0A " /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# Waits up to READY_TIMEOUT_S for port $1 to listen while pid $2 lives; for shardcast, also
# for its "shardcast listening" log line in $3 (every shard has bound by then).
wait_ready() {
    local port=$1 pid=$2 logfile=${3:-} i
    for ((i = 0; i < READY_TIMEOUT_S * 10; i++)); do
        if ! alive "$pid"; then
            log "server pid $pid exited before listening on port $port (see ${logfile:-its log})"
            return 1
        fi
        if listening "$port" && { [[ -z $logfile ]] || grep -q 'shardcast listening' "$logfile"; }; then
            return 0
        fi
        sleep 0.1
    done
    log "server pid $pid not ready on 127.0.0.1:$port after ${READY_TIMEOUT_S} s (see ${logfile:-its log})"
    return 1
}
