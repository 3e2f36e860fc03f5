#!/usr/bin/env bash
# security.sh: what authentication, permissions and TLS cost. The same fan-out (one
# publisher, 100 subscribers, 128-byte messages) against shardcast and nats-server, each
# open, with every client logged in as a user whose publishes are checked against allow
# and deny lists (10 allow entries with wildcards, 1 deny entry; subscriptions allowed on
# bench.> and _INBOX.>), and over TLS (a P-256 certificate made here with openssl; the
# generator's clients start TLS after INFO, `bench --tls`). Then the table for
# docs/benchmarks.md: deliveries/s and server CPU per delivery, each variant / the same
# server open, side by side.
#
#   benches/security.sh [--reps N] [--msgs N] [--out DIR] [--md FILE] [--no-build]
#
#   --reps N     repetitions (default 9); each runs the four variants, interleaved
#   --msgs N     messages the publisher sends per run (default 100000, 100 deliveries each)
#   --out DIR    results (default target/security-bench; an existing one is renamed)
#   --md FILE    where the section goes (default docs/benchmarks.md; replaced in place)
#   --no-build   use target/release/shardcast as it is
#
# A fresh server process on free ports per run, stopped with SIGTERM by its own PID.

set -euo pipefail

CALLER_PWD=$PWD
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPS=9
MSGS=100000
OUT=$ROOT/target/security-bench
MD=$ROOT/docs/benchmarks.md
BUILD=1
READY_TIMEOUT_S=10
BENCH_TIMEOUT_S=${BENCH_TIMEOUT_S:-300}
VARIANTS=(shardcast shardcast+perms shardcast+tls nats-server nats-server+perms nats-server+tls)

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
need_cmd nats-server nats-server
need_cmd python3 python3
need_cmd openssl openssl
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
    echo "nats-server: $(nats-server --version 2>&1 | head -n1)"
    echo "msgs: $MSGS, reps: $REPS"
} >"$OUT/machine.txt"

# The same user for both servers: 10 allow entries (the bench publishes to bench.0), one deny.
ALLOW='"orders.>", "payments.*", "audit.*.log", "metrics.>", "events.*.*", "chat.>", "feeds.*", "market.*.quotes", "bench.*", "_INBOX.>"'
cat >"$OUT/configs/shardcast-perms.toml" <<EOF
[[auth.users]]
user = "bench"
password = "bench"
permissions = { publish = { allow = [$ALLOW], deny = ["bench.secret"] }, subscribe = { allow = ["bench.>", "_INBOX.>"] } }
EOF
cat >"$OUT/configs/nats-server-perms.conf" <<EOF
authorization {
  users: [
    { user: bench, password: bench, permissions: {
        publish: { allow: [$ALLOW], deny: ["bench.secret"] },
        subscribe: { allow: ["bench.>", "_INBOX.>"] } } }
  ]
}
EOF

# A CA and a server certificate for 127.0.0.1 (P-256), for the TLS variants.
PKI=$OUT/configs/pki
mkdir -p "$PKI"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=security.sh CA" -keyout "$PKI/ca-key.pem" -out "$PKI/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$PKI/server-key.pem" -out "$PKI/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$PKI/server.ext"
openssl x509 -req -in "$PKI/server.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca-key.pem" \
    -CAcreateserial -days 2 -extfile "$PKI/server.ext" -out "$PKI/server.pem" 2>/dev/null

# run REP VARIANT: one server, one bench run.
run() {
    local rep=$1 variant=$2 port mport slog url pid tls=()
    port=$(free_port) mport=$(free_port)
    slog=$OUT/logs/$variant-$rep.server.log
    url=nats://127.0.0.1:$port
    case $variant in
        shardcast) start_bg "$slog" "$BIN" serve -a 127.0.0.1 -p "$port" -m "$mport" ;;
        shardcast+perms) start_bg "$slog" "$BIN" serve -c "$OUT/configs/shardcast-perms.toml" \
            -a 127.0.0.1 -p "$port" -m "$mport"
            url=nats://bench:bench@127.0.0.1:$port ;;
        shardcast+tls) start_bg "$slog" "$BIN" serve --tlscert "$PKI/server.pem" \
            --tlskey "$PKI/server-key.pem" -a 127.0.0.1 -p "$port" -m "$mport"
            tls=(--tls --tls-ca "$PKI/ca.pem") ;;
        nats-server) start_bg "$slog" nats-server -a 127.0.0.1 -p "$port" -m "$mport" ;;
        nats-server+tls) start_bg "$slog" nats-server --tls --tlscert "$PKI/server.pem" \
            --tlskey "$PKI/server-key.pem" -a 127.0.0.1 -p "$port" -m "$mport"
            tls=(--tls --tls-ca "$PKI/ca.pem") ;;
        nats-server+perms) start_bg "$slog" nats-server -c "$OUT/configs/nats-server-perms.conf" \
            -a 127.0.0.1 -p "$port" -m "$mport"
            url=nats://bench:bench@127.0.0.1:$port ;;
    esac
    pid=$BG_PID
    local ready_log=
    [[ $variant == shardcast* ]] && ready_log=$slog
    wait_ready "$port" "$pid" "$ready_log" || { stop_pid "$pid"; return 1; }
    timeout "$BENCH_TIMEOUT_S" "$BIN" bench pubsub --pubs 1 --subs 100 --size 128 \
        --msgs "$MSGS" --threads 2 --url "$url" --server-pid "$pid" ${tls[@]+"${tls[@]}"} \
        --monitor "http://127.0.0.1:$mport" --label "$variant" --csv "$OUT/results.csv" \
        >"$OUT/logs/$variant-$rep.bench.log" 2>&1 ||
        log "$variant rep $rep: bench failed (see logs/)"
    stop_pid "$pid"
}

for ((rep = 1; rep <= REPS; rep++)); do
    for variant in "${VARIANTS[@]}"; do
        log "rep $rep/$REPS: $variant"
        run "$rep" "$variant" || true
        sleep 1
    done
done
python3 "$ROOT/benches/report_security.py" "$OUT/results.csv" --machine "$OUT/machine.txt" \
    >"$OUT/section.md"
cat "$OUT/section.md"
python3 "$ROOT/benches/report_security.py" "$OUT/results.csv" --machine "$OUT/machine.txt" \
    --splice "$MD"
log "results in $OUT, section in $MD"
