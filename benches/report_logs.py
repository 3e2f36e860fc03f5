"""The log-ingest table of docs/benchmarks.md from benches/logs.sh's results.csv: per
server and input, the median over the reps of logs routed/s, deliveries/s and the server's
CPU per log, the copies lost, and shardcast's syslog-tcp figures as ratios of rsyslog's.

    python3 benches/report_logs.py results.csv > table.md
"""

import csv
import statistics
import sys

ORDER = [
    ("shardcast", "nats", "0"),
    ("shardcast", "tcp", "0"),
    ("shardcast", "syslog-tcp", "0"),
    ("shardcast", "syslog-udp", "0"),
    ("shardcast", "syslog-udp", None),
    ("rsyslog", "syslog-tcp", "0"),
    ("rsyslog", "syslog-udp", "0"),
    ("rsyslog", "syslog-udp", None),
]


def groups(path):
    """(label, input, rate) -> list of rows."""
    out = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            out.setdefault((row["label"], row["input"], row["rate"]), []).append(row)
    return out


def median(rows, key):
    values = [float(r[key]) for r in rows if r.get(key)]
    return statistics.median(values) if values else None


def fmt(v, spec):
    return "—" if v is None else format(v, spec)


def main(path):
    g = groups(path)
    print("| server | input | runs | logs routed/s | deliveries/s | CPU per log (µs) | copies lost (of all runs) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    keys = []
    for label, inp, rate in ORDER:
        if rate is None:  # every paced rate that ran
            keys += sorted((k for k in g if k[:2] == (label, inp) and k[2] != "0"), key=lambda k: int(k[2]))
        else:
            keys.append((label, inp, rate))
    for key in keys:
        rows = g.get(key)
        if not rows:
            continue
        how = key[1] if key[2] == "0" else f"{key[1]} at {int(key[2]):,}/s"
        lost = sum(int(r["lost"]) for r in rows)
        expected = sum(int(r["expected"]) for r in rows)
        share = f"{lost:,} ({100.0 * lost / expected:.1f} %)" if lost else "0"
        print(
            f"| {key[0]} | {how} | {len(rows)} | {fmt(median(rows, 'logs_per_s'), ',.0f')} "
            f"| {fmt(median(rows, 'deliveries_per_s'), ',.0f')} "
            f"| {fmt(median(rows, 'server_cpu_us_per_log'), '.2f')} | {share} |"
        )
    sc, rs = g.get(("shardcast", "syslog-tcp", "0")), g.get(("rsyslog", "syslog-tcp", "0"))
    if sc and rs:
        rate = median(sc, "logs_per_s") / median(rs, "logs_per_s")
        cpu = median(sc, "server_cpu_us_per_log") / median(rs, "server_cpu_us_per_log")
        print()
        print(
            f"Syslog over TCP, shardcast ÷ rsyslog (medians): **{rate:.2f}×** the logs routed "
            f"per second at **{cpu:.2f}×** the CPU per log."
        )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: report_logs.py results.csv")
    main(sys.argv[1])
