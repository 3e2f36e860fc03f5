"""The across-nodes section of docs/benchmarks.md, from benches/cluster.sh's results: per
variant (shardcast or nats-server as the leaf nodes of a 3-member nats-server cluster, and
the same server alone as the baseline) and entry (a fixed rate, as fast as possible), the
median over the reps of deliveries/s, end-to-end latency, loss and CPU per delivery, the
ratios shardcast / nats-server, and the latency the cluster adds per hop.

    python3 benches/report_cluster.py OUT/runs.csv [--machine OUT/machine.txt] [--splice FILE.md]

runs.csv has one line per run (rep, variant, topology, entry, status, dir); each run's
directory holds the generators' output (pub.json, sub-b.json, sub-c.json, sub-*.hist) and
cpu.txt (utime+stime of every server process before and after the run). Without --splice
it prints the section; with it, it replaces (or adds, before Targets) the section in FILE.md.
"""

import csv
import json
import os
import re
import statistics
import sys
import textwrap

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report_irc  # noqa: E402  (next to this file)

HEADING = "## Across nodes: shardcast and nats-server as leaf nodes"
VARIANTS = ["shardcast", "nats-server"]
# (topology, entry), in the order of the tables.
ENTRIES = [("single", "rate"), ("cluster", "rate"), ("single", "max"), ("cluster", "max")]
# Hops a cross-node delivery makes that a single-server one does not: the leaf link
# A→hub0, the route hub0→hub1 (or hub2), the leaf link hub1→B (or hub2→C).
HOPS = 3


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_hist(path):
    """(value µs, count) pairs of a `bench --hist` file, or None."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) != 4 or line.startswith("#"):
            continue
        try:
            out.append((float(parts[0]), int(parts[2])))
        except ValueError:
            continue
    return out


def merged_percentile(hists, q):
    """The q-quantile (0..1) of the union of histograms given as (value, count) pairs, each
    count being the samples above the previous value up to this one (interpolated within
    a step: the file lists values at quantile steps, not every bucket)."""
    pairs = sorted(p for h in hists for p in h)
    total = sum(c for _, c in pairs)
    if total == 0:
        return None
    want, seen, prev = q * total, 0, 0.0
    for value, count in pairs:
        if count and seen + count >= want:
            return prev + (value - prev) * (want - seen) / count
        seen += count
        prev = value
    return pairs[-1][0]


def read_cpu(path):
    """{role: CPU seconds over the run} from cpu.txt, or None."""
    try:
        with open(path) as f:
            lines = [line.split() for line in f if line.strip()]
    except OSError:
        return None
    tck = next((float(p[1]) for p in lines if p[0] == "clk_tck"), 100.0)
    out = {}
    for p in lines:
        if p[0] == "clk_tck" or len(p) != 4:
            continue
        before, after = int(p[2]), int(p[3])
        if before < 0 or after < 0:
            return None  # a process was gone before the end: no figure
        out[p[0]] = (after - before) / tck
    return out


def load_run(base, row):
    """One run's figures, or None when it did not complete."""
    d = os.path.join(base, row["dir"])
    subs = [read_json(os.path.join(d, f"sub-{n}.json")) for n in "bc"]
    pub = read_json(os.path.join(d, "pub.json"))
    cpu = read_cpu(os.path.join(d, "cpu.txt"))
    if row["status"] != "ok" or None in subs or pub is None:
        return None
    received = sum(s["received"] for s in subs)
    run = {
        "deliveries_per_s": sum(s["sub_msgs_per_s"] for s in subs),
        "pub_per_s": pub["pub_msgs_per_s"],
        "received": received,
        "lost": sum(s["lost"] for s in subs),
        "subs": sum(s["subs"] for s in subs),
    }
    hists = [read_hist(os.path.join(d, f"sub-{n}.hist")) for n in "bc"]
    for key, q in (("p50", 0.5), ("p99", 0.99)):
        if all(hists):
            run[key] = merged_percentile(hists, q)
        else:  # no histograms: the worse of the two subscriber processes
            values = [s["latency"][f"{key}_us"] for s in subs if s.get("latency")]
            run[key] = max(values) if values else None
    if cpu and received > 0:
        nodes = sum(v for k, v in cpu.items() if not k.startswith("hub"))
        hubs = [v for k, v in cpu.items() if k.startswith("hub")]
        run["node_cpu"] = nodes * 1e6 / received
        run["hub_cpu"] = sum(hubs) * 1e6 / received if hubs else None
    return run


def load(results):
    """{(topology, entry, variant): ([figures of each completed run], attempts)}."""
    base = os.path.dirname(os.path.abspath(results))
    out = {}
    with open(results, newline="") as f:
        for row in csv.DictReader(f):
            key = (row["topology"], row["entry"], row["variant"])
            runs, attempts = out.get(key, ([], 0))
            run = load_run(base, row)
            if run is not None:
                runs.append(run)
            out[key] = (runs, attempts + 1)
    return out


def stat(runs, key):
    """(median, min, max) of a figure over the runs, or None."""
    values = [r[key] for r in runs if r.get(key) is not None]
    if not values:
        return None
    return statistics.median(values), min(values), max(values)


def si(v):
    for div, suffix in ((1e6, " M"), (1e3, " k")):
        if abs(v) >= div:
            return f"{v / div:.3g}{suffix}"
    return f"{v:.3g}"


def fmt(s, kind):
    if s is None:
        return "—"
    f = {"rate": si, "us": lambda v: f"{v:,.0f}", "cpu": lambda v: f"{v:.3g}"}[kind]
    med, lo, hi = s
    return f"{f(med)} ({f(lo)}–{f(hi)})"


def ratio(a, b):
    if a is None or b is None or b[0] == 0:
        return None
    return a[0] / b[0]


def fmt_ratio(r):
    return "—" if r is None else f"{r:.2f}×"


def machine_fields(machine):
    fields = {}
    if machine and os.path.exists(machine):
        with open(machine) as f:
            for line in f:
                if ":" in line:
                    k, v = line.split(":", 1)
                    fields[k.strip()] = v.strip()
    return fields


def entry_name(g, topo, entry, rate):
    where = "one server alone" if topo == "single" else "across the cluster"
    what = (f"{rate} msgs/s" if rate else "a fixed rate") if entry == "rate" else "as fast as possible"
    subs = {r["subs"] for v in VARIANTS for t in ("single", "cluster")
            for r in g.get((t, entry, v), ([], 0))[0]}
    if len(subs) == 1:
        what += f" to {subs.pop()} subscribers"
    return f"{where}, {what}"


FIGURES = [
    ("deliveries_per_s", "deliveries/s", "rate"),
    ("p50", "p50 µs", "us"),
    ("p99", "p99 µs", "us"),
    ("node_cpu", "node CPU µs/delivery", "cpu"),
    ("hub_cpu", "hub CPU µs/delivery", "cpu"),
]


def table(g, rate):
    head = ["entry", "variant", "runs"] + [label for _, label, _ in FIGURES] + ["lost"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * (len(head) - 2)]
    for topo, entry in ENTRIES:
        for variant in VARIANTS:
            runs, attempts = g.get((topo, entry, variant), ([], 0))
            if not attempts:
                continue
            cells = [fmt(stat(runs, key), kind) for key, _, kind in FIGURES]
            if topo == "single":
                cells[-1] = "—"  # no hub
            lost = sum(r["lost"] for r in runs)
            out.append(
                f"| {entry_name(g, topo, entry, rate)} | {variant} | {len(runs)}/{attempts} | "
                + " | ".join(cells)
                + f" | {lost:,} |"
            )
    return out


def ratio_table(g, rate):
    head = ["entry"] + [label for _, label, _ in FIGURES]
    out = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for topo, entry in ENTRIES:
        sc, ns = g.get((topo, entry, "shardcast")), g.get((topo, entry, "nats-server"))
        if not (sc and ns):
            continue
        cells = [fmt_ratio(ratio(stat(sc[0], k), stat(ns[0], k))) for k, _, _ in FIGURES]
        if topo == "single":
            cells[-1] = "—"
        out.append(f"| {entry_name(g, topo, entry, rate)} | " + " | ".join(cells) + " |")
    return out


def med(g, topo, entry, variant, key):
    s = stat(g.get((topo, entry, variant), ([], 0))[0], key)
    return None if s is None else s[0]


def findings(g, rate):
    out = []
    # Latency at the fixed rate: what the cluster adds, per hop.
    hop = {}
    for v in VARIANTS:
        c, s = med(g, "cluster", "rate", v, "p50"), med(g, "single", "rate", v, "p50")
        c99, s99 = med(g, "cluster", "rate", v, "p99"), med(g, "single", "rate", v, "p99")
        if c is None or s is None:
            continue
        hop[v] = (c - s) / HOPS
        line = (
            f"- {v}, {rate or 'fixed'} msgs/s: p50 {c:,.0f} µs across the cluster against {s:,.0f} µs on "
            f"one server alone: the {HOPS} extra hops add {c - s:,.0f} µs, "
            f"**{hop[v]:,.0f} µs per hop** ((cluster − alone) / {HOPS}, medians of the p50s)"
        )
        if c99 is not None and s99 is not None:
            line += f"; p99 {c99:,.0f} µs against {s99:,.0f} µs"
        out.append(line + ".")
    if len(hop) == 2 and hop["nats-server"] > 0 and hop["shardcast"] > 0:
        out.append(
            f"- Per hop, the cluster of shardcast leaves adds {hop['shardcast'] / hop['nats-server']:.2f}× "
            f"the latency the cluster of nats-server leaves adds. The route between hub members "
            f"is nats-server to nats-server in both, so the difference lies in the two leaf "
            f"hops (and in what the leaves do around them)."
        )
    # As fast as possible.
    sc = med(g, "cluster", "max", "shardcast", "deliveries_per_s")
    ns = med(g, "cluster", "max", "nats-server", "deliveries_per_s")
    if sc and ns:
        line = (
            f"- As fast as possible across the cluster: shardcast leaves deliver {si(sc)}/s, "
            f"nats-server leaves {si(ns)}/s (**{sc / ns:.2f}×**)"
        )
        scc = med(g, "cluster", "max", "shardcast", "node_cpu")
        nsc = med(g, "cluster", "max", "nats-server", "node_cpu")
        if scc and nsc:
            line += (
                f", for {scc:.3g} and {nsc:.3g} µs of the three leaves' CPU per delivery "
                f"(**{scc / nsc:.2f}×**)"
            )
        out.append(line + ".")
    for v in VARIANTS:
        c = med(g, "cluster", "max", v, "node_cpu")
        s = med(g, "single", "max", v, "node_cpu")
        cr = med(g, "cluster", "max", v, "deliveries_per_s")
        sr = med(g, "single", "max", v, "deliveries_per_s")
        if c and s and cr and sr:
            out.append(
                f"- {v} across the cluster against one {v} alone, as fast as possible: "
                f"{cr / sr:.2f}× the deliveries/s for {c / s:.2f}× the CPU per delivery (the "
                f"three leaves together against the one server; the hub's CPU is extra)."
            )
    parts = []
    for e, words in (("rate", "at the fixed rate"), ("max", "as fast as possible")):
        h = [med(g, "cluster", e, v, "hub_cpu") for v in VARIANTS]
        if None not in h and h[1] > 0:
            parts.append(
                f"{words} {h[0]:.3g} µs with shardcast leaves and {h[1]:.3g} µs with "
                f"nats-server leaves ({h[0] / h[1]:.2f}×)"
            )
    if parts:
        out.append(
            "- The hub members' CPU per delivery, the same nats-server in both variants (a "
            "sanity check): " + "; ".join(parts) + "."
        )
    lost = {v: sum(r["lost"] for (_, _, vv), (runs, _) in g.items() if vv == v for r in runs)
            for v in VARIANTS}
    failed = {v: sum(a - len(runs) for (_, _, vv), (runs, a) in g.items() if vv == v)
              for v in VARIANTS}
    out.append(
        "- Lost over all runs: "
        + ", ".join(f"{v} {lost[v]:,}" for v in VARIANTS)
        + "; runs that did not complete: "
        + ", ".join(f"{v} {failed[v]}" for v in VARIANTS)
        + "."
    )
    out.append("")
    out += wrap(
        "How to read this: on 2 CPUs, a message passing through 6 server processes may wait "
        "for a CPU at each of them, so the added latency per hop here is an upper bound of "
        "what a hop costs on machines with a core per process, and it varies from run to run "
        "(see the ranges). The comparison is fair in that both variants run the same hub, the "
        "same generators and the same counts, interleaved; the ratios are what to read."
    )
    return out


def wrap(text):
    return textwrap.wrap(text, width=90, break_on_hyphens=False, break_long_words=False)


def section(results, machine=None):
    g = load(results)
    fields = machine_fields(machine)
    m = re.match(r"(\d+) msgs/s to (\d+) subscribers on B", fields.get("fixed rate", ""))
    rate, rate_subs = (f"{int(m.group(1)):,}", m.group(2)) if m else (None, "S")
    m = re.match(r"(\d+) subscribers on B", fields.get("as fast as possible", ""))
    subs = m.group(1) if m else "S"
    command = fields.get("command", "benches/cluster.sh")
    out = [
        HEADING,
        "",
        "```",
        "publisher ─▶ A ──leaf──▶ hub0 ──route──▶ hub1 ──leaf──▶ B ─▶ subscribers",
        "                           └────route──▶ hub2 ──leaf──▶ C ─▶ subscribers",
        "A, B, C: shardcast nodes (serve --shards 1, [leafnode]) or nats-server leaf nodes",
        "baseline: publisher and both subscriber groups on one server alone",
        "```",
        "",
        f"Generated by `{command}`.",
        "",
    ]
    out += wrap(
        "A 3-member nats-server cluster (full mesh of routes, a `leafnodes` port on each) "
        "and three leaf nodes A, B, C dialling hub0, hub1, hub2: shardcast nodes or, in the "
        "same run, plain nats-server leaf nodes. One publisher on A, subscribers on B and on "
        "C (one subject), 128 B messages; each delivery crosses 3 hops a single server does "
        f"not have. Two entries: {rate or 'a fixed rate of'} msgs/s to {rate_subs} subscribers on B and "
        f"{rate_subs} on C, for latency (few subscribers, so the hops rather than the fan-out "
        f"burst make it up), and as fast as possible to {subs} on B and {subs} on C. The "
        "baseline runs the same entries against one server alone with the same generator "
        "processes (`shardcast bench sub` twice and `bench pub`, `--threads 1` each)."
    )
    out.append("")
    out += wrap(
        "Every run starts every process fresh on free ports and waits for the hub's full "
        "mesh (`/routez`), the three leaf links (the hub's `/leafz`) and the subscribers' "
        "interest on A (hub0's `/routez`, A's `/leafz`) before the publisher starts; "
        "shardcast and nats-server alternate entry by entry within each rep. Figures are "
        "medians over the reps (min–max). Deliveries/s: both subscriber processes' rates "
        "added (at the fixed rate it is the rate times the subscribers by construction). "
        "Latency: from the publisher's intended send time (fixed rate, corrected for "
        "coordinated omission) or batch time (as fast as possible, where it is mostly "
        "queueing) to the subscriber's read, p50/p99 of B's and C's histograms merged. CPU: "
        "utime+stime from `/proc/PID/stat` (clock ticks) over the run divided by the "
        "deliveries; *node* = "
        "the three leaves (or the one server alone), *hub* = the three hub members. Lost: "
        "summed over the runs. The machine has 2 CPUs shared by 9 processes (6 servers and "
        "3 generators), so absolute figures are pessimistic: read the ratios."
    )
    out.append("")
    if machine and os.path.exists(machine):
        with open(machine) as f:
            out += ["```", f.read().rstrip(), "```", ""]
    out += table(g, rate)
    out += ["", "shardcast / nats-server (medians):", ""]
    out += ratio_table(g, rate)
    out.append("")
    out += findings(g, rate)
    return "\n".join(out) + "\n"


def carry_over(old_text, new_text):
    """`new_text` with `old_text`'s across-nodes section, if it had one."""
    return report_irc.carry_over(old_text, new_text, HEADING)


def main():
    return report_irc.section_main(__doc__, section, HEADING, "across-nodes")


if __name__ == "__main__":
    sys.exit(main())
