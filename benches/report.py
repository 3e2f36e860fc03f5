#!/usr/bin/env python3
"""Turns one benches/compare.sh campaign into a Markdown report and its charts.

Input: results.csv (one row per `shardcast bench --csv` run), runs.csv (compare.sh's side
file: which entry, server and rep each results.csv row belongs to), iperf3.csv and
machine.txt. Output: one Markdown file and PNG charts (matplotlib; skipped, with a note in
the report, when it cannot be imported). Every figure is the median over reps with the
min–max range beside it. A run that failed shows as "failed", an entry never run as
"not measured".

    benches/report.py --results R.csv --entries runs.csv --iperf iperf3.csv \
        --machine machine.txt --md docs/benchmarks.md --img docs/img
"""

import argparse
import csv
import os
import re
import statistics
import sys
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report_flow  # noqa: E402  (next to this file)
import report_irc  # noqa: E402
import report_logs  # noqa: E402
import report_security  # noqa: E402
import report_cluster  # noqa: E402

SERVERS = ("shardcast", "nats-server")
SC, NATS = SERVERS
COLORS = {SC: "#1f77b4", NATS: "#ff7f0e"}
CHART_NAMES = ("fanout_msgs.png", "fanout_cpu.png", "latency.png", "stalled.png")

# Targets (the Part C checks).
FANOUT_TARGET_SUBS = (100, 1000)
FANOUT_TARGET_SIZE = 128
CPU_RATIO_MAX = 0.5
IPERF_SHARE_MIN = 0.5
RSS_PER_CONN_MAX = 8192
STALLED_KEPT_MIN = 0.9
STALLED_P99_GROWTH_MAX = 2.0

LATENCY_COLUMNS = (
    ("p50", "lat_p50_us"),
    ("p90", "lat_p90_us"),
    ("p99", "lat_p99_us"),
    ("p99.9", "lat_p999_us"),
    ("max", "lat_max_us"),
)


# --- input ---------------------------------------------------------------------------


def read_csv(path):
    """Rows of a CSV file as dicts; [] when the file is missing or empty."""
    if not path or not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def number(value):
    """A float from a CSV cell, or None when empty or not a number."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        return None


class Stat:
    """Median, min and max of one metric over the reps of one group."""

    def __init__(self, values):
        self.n = len(values)
        self.median = statistics.median(values)
        self.lo = min(values)
        self.hi = max(values)


class Group:
    """The runs of one (entry, server): how many were attempted, which rows succeeded."""

    def __init__(self, entry, server):
        self.entry = entry
        self.server = server
        self.runs = []  # runs.csv rows
        self.rows = []  # results.csv rows of the runs that succeeded

    @property
    def failed(self):
        return [r for r in self.runs if r.get("status") != "ok"]

    def values(self, column):
        return [v for v in (number(r.get(column)) for r in self.rows) if v is not None]

    def stat(self, column):
        values = self.values(column)
        return Stat(values) if values else None


class Campaign:
    """Everything one compare.sh run produced, grouped by (entry, server)."""

    def __init__(self, results_path, runs_path, iperf_path, machine_path):
        results = read_csv(results_path)
        self.runs = read_csv(runs_path)
        self.groups = {}
        self.entries = []  # in first-run order
        self.problems = []  # join errors worth a line in the report
        for run in self.runs:
            entry, server = run.get("entry", ""), run.get("server", "")
            key = (entry, server)
            if key not in self.groups:
                self.groups[key] = Group(entry, server)
            if entry not in self.entries:
                self.entries.append(entry)
            group = self.groups[key]
            group.runs.append(run)
            if run.get("status") != "ok":
                continue
            row = number(run.get("row"))
            if row is None or not 1 <= row <= len(results):
                self.problems.append(f"run {run.get('run')}: row {run.get('row')!r} is not in results.csv")
                run["status"] = "row-missing"
                continue
            result = results[int(row) - 1]
            label = (result.get("label") or "").strip()
            if label and label != server:
                self.problems.append(f"run {run.get('run')}: results.csv row {int(row)} is labelled {label!r}, not {server!r}")
                run["status"] = "label-mismatch"
                continue
            group.rows.append(result)
        self.iperf_gbit = [v for v in (number(r.get("gbit_per_s")) for r in read_csv(iperf_path)) if v is not None]
        self.machine = ""
        if machine_path and os.path.exists(machine_path):
            with open(machine_path) as f:
                self.machine = f.read().strip()

    def group(self, entry, server):
        return self.groups.get((entry, server))

    def stat(self, entry, server, column):
        group = self.group(entry, server)
        return group.stat(column) if group else None

    def iperf(self):
        return Stat(self.iperf_gbit) if self.iperf_gbit else None

    def machine_field(self, key):
        for line in self.machine.splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip() == key:
                return value.strip()
        return None


def fanout_entries(campaign):
    """(subs, size, entry) of every fan-out entry, sorted."""
    found = []
    for entry in campaign.entries:
        m = re.fullmatch(r"fanout-s(\d+)-b(\d+)", entry)
        if m:
            found.append((int(m.group(1)), int(m.group(2)), entry))
    return sorted(found)


def stalled_entries(campaign):
    """(stalled, entry) of every stalled entry, sorted."""
    found = []
    for entry in campaign.entries:
        m = re.fullmatch(r"stalled-(\d+)", entry)
        if m:
            found.append((int(m.group(1)), entry))
    return sorted(found)


# --- formatting ----------------------------------------------------------------------


def scale_for(value):
    for div, suffix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(value) >= div:
            return div, suffix
    return 1.0, ""


def sig3(value):
    """About three significant digits, never in exponent notation."""
    a = abs(value)
    if a >= 100 or a == 0:
        return f"{value:.0f}"
    if a >= 10:
        return f"{value:.1f}"
    if a >= 1:
        return f"{value:.2f}"
    return f"{value:#.3g}"


def fmt_num(value, si=True):
    if value is None:
        return "—"
    div, suffix = scale_for(value) if si else (1.0, "")
    return f"{sig3(value / div)}{suffix}"


def fmt_stat(stat, si=True):
    """'4.52 M (4.40–4.61)': median, then the range over reps in the median's unit."""
    if stat is None:
        return None
    div, suffix = scale_for(stat.median) if si else (1.0, "")
    text = f"{sig3(stat.median / div)}{suffix}"
    if stat.n > 1:
        text += f" ({sig3(stat.lo / div)}–{sig3(stat.hi / div)})"
    return text


def cell(campaign, entry, server, column, si=True):
    """A table cell for one group's metric: the figure, or why there is none."""
    group = campaign.group(entry, server)
    if group is None or not group.runs:
        return "not measured"
    if not group.rows:
        return "failed"
    text = fmt_stat(group.stat(column), si)
    return text if text is not None else "—"


def ratio(a, b):
    """a / b of two Stats' medians, or None."""
    if a is None or b is None or b.median == 0:
        return None
    return a.median / b.median


def fmt_ratio(value):
    return "—" if value is None else f"{value:.2f}×"


def fmt_pct(value):
    return "—" if value is None else f"{value * 100:.0f} %"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def lost_max(campaign, entry, server):
    group = campaign.group(entry, server)
    if group is None or not group.runs:
        return "not measured"
    if not group.rows:
        return "failed"
    values = group.values("lost")
    return fmt_num(max(values), si=False) if values else "—"


def iperf_share(campaign, entry, server):
    """Delivered payload bits/s over the iperf3 single-stream ceiling (medians)."""
    mb = campaign.stat(entry, server, "sub_mb_per_s")
    ceiling = campaign.iperf()
    if mb is None or ceiling is None or ceiling.median == 0:
        return None
    return mb.median * 1e6 * 8 / (ceiling.median * 1e9)


# --- sections ------------------------------------------------------------------------

HEADLINES = {
    # kind: (column, what, lower is better, SI suffixes)
    "fanout": ("sub_msgs_per_s", "deliveries/s", False, True),
    "latency": ("lat_p99_us", "p99 latency µs", True, False),
    "idle": ("rss_per_conn_bytes", "RSS bytes per connection", True, False),
    "stalled": ("sub_msgs_per_s", "healthy deliveries/s", False, True),
    "overload": ("server_rss_peak_bytes", "peak server RSS bytes", True, True),
}


def entry_kind(entry):
    if entry.startswith("fanout-"):
        return "fanout"
    if entry.startswith("stalled-"):
        return "stalled"
    return entry if entry in HEADLINES else None


def section_summary(campaign):
    rows = []
    for entry in campaign.entries:
        kind = entry_kind(entry)
        if kind is None:
            continue
        column, what, lower, si = HEADLINES[kind]
        r = ratio(campaign.stat(entry, SC, column), campaign.stat(entry, NATS, column))
        runs = []
        for server in SERVERS:
            group = campaign.group(entry, server)
            runs.append(f"{len(group.rows)}/{len(group.runs)}" if group else "0/0")
        rows.append([
            f"`{entry}`", what,
            cell(campaign, entry, SC, column, si), cell(campaign, entry, NATS, column, si),
            fmt_ratio(r), "lower" if lower else "higher", " · ".join(runs),
        ])
    if not rows:
        return "## Summary\n\nNo runs recorded.\n"
    return "\n".join([
        "## Summary",
        "",
        "The headline figure of every matrix entry. Ratio = shardcast / nats-server (medians);",
        "the *better* column says which direction wins. Runs = succeeded/attempted, "
        "shardcast · nats-server.",
        "",
        table(["entry", "metric", SC, NATS, "ratio", "better", "runs"], rows),
        "",
    ])


def section_fanout(campaign, charts):
    entries = fanout_entries(campaign)
    out = ["## Fan-out", ""]
    if not entries:
        return "\n".join(out + ["Not measured.", ""])
    out += [
        "One publisher, S subscribers on one subject (`shardcast bench pubsub --pubs 1 --subs S",
        "--size B --threads 2`, max(4000, 4 M / S) messages, so each run delivers about 4 M",
        "messages). Deliveries/s and MB/s are aggregate over all subscribers (1 MB = 10⁶ payload",
        "bytes); CPU is the server's CPU time per delivered message. Lost = max over reps.",
        "% of iperf3 = delivered payload bits/s over the loopback single-stream ceiling (1024 B only).",
        "",
    ]
    rows = []
    for subs, size, entry in entries:
        cpu = ratio(campaign.stat(entry, SC, "server_cpu_us_per_msg"), campaign.stat(entry, NATS, "server_cpu_us_per_msg"))
        msgs = ratio(campaign.stat(entry, SC, "sub_msgs_per_s"), campaign.stat(entry, NATS, "sub_msgs_per_s"))
        share = "—"
        if size == 1024:
            share = f"{fmt_pct(iperf_share(campaign, entry, SC))} / {fmt_pct(iperf_share(campaign, entry, NATS))}"
        rows.append([
            f"1→{subs}", size,
            cell(campaign, entry, SC, "sub_msgs_per_s"), cell(campaign, entry, NATS, "sub_msgs_per_s"),
            fmt_ratio(msgs),
            cell(campaign, entry, SC, "sub_mb_per_s", si=False), cell(campaign, entry, NATS, "sub_mb_per_s", si=False),
            cell(campaign, entry, SC, "server_cpu_us_per_msg", si=False),
            cell(campaign, entry, NATS, "server_cpu_us_per_msg", si=False),
            fmt_ratio(cpu),
            f"{lost_max(campaign, entry, SC)} / {lost_max(campaign, entry, NATS)}",
            share,
        ])
    out.append(table([
        "fan-out", "size B",
        f"{SC} deliveries/s", f"{NATS} deliveries/s", "ratio (higher is better)",
        f"{SC} MB/s", f"{NATS} MB/s",
        f"{SC} CPU µs/delivery", f"{NATS} CPU µs/delivery", "CPU ratio (lower is better)",
        "lost (sc / nats)", "% of iperf3 (sc / nats)",
    ], rows))
    out.append("")
    out += charts.links(("fanout_msgs.png", "Fan-out deliveries/s"), ("fanout_cpu.png", "Server CPU µs per delivery"))
    return "\n".join(out)


def section_latency(campaign, charts):
    entry = "latency"
    out = ["## Latency", ""]
    if entry not in campaign.entries:
        return "\n".join(out + ["Not measured.", ""])
    out += [
        "End-to-end latency, publisher to each of 100 subscribers, at a fixed 10,000 msgs/s of",
        "128 B (`shardcast bench latency --subs 100 --rate 10000`), corrected for coordinated",
        "omission. Microseconds; median over reps with the range.",
        "",
    ]
    rows = []
    for name, column in LATENCY_COLUMNS:
        r = ratio(campaign.stat(entry, SC, column), campaign.stat(entry, NATS, column))
        rows.append([name, cell(campaign, entry, SC, column, si=False),
                     cell(campaign, entry, NATS, column, si=False), fmt_ratio(r)])
    rows.append(["lost (max)", lost_max(campaign, entry, SC), lost_max(campaign, entry, NATS), ""])
    out.append(table(["percentile", f"{SC} µs", f"{NATS} µs", "ratio (lower is better)"], rows))
    out.append("")
    out += charts.links(("latency.png", "Latency percentiles"))
    return "\n".join(out)


def section_overload(campaign):
    entry = "overload"
    out = ["## Overload: two publishers, as fast as possible", ""]
    if entry not in campaign.entries:
        return "\n".join(out + ["Not measured.", ""])
    out += [
        "Two publishers send 128 B messages over 3 subjects to 100 subscribers as fast as",
        "they can for 3 s (`shardcast bench pubsub --pubs 2 --subs 100 --subjects 3",
        "--duration 3s`): more than the subscribers can take, so the server must slow the",
        "publishers down or buffer. Peak RSS is sampled every 10 ms while measuring.",
        "",
    ]
    rows = []
    for column, what, si in (
        ("sub_msgs_per_s", "deliveries/s", True),
        ("server_rss_peak_bytes", "peak server RSS bytes", True),
        ("server_cpu_us_per_msg", "server CPU µs/delivery", False),
        ("lat_p99_us", "p99 latency µs", False),
    ):
        r = ratio(campaign.stat(entry, SC, column), campaign.stat(entry, NATS, column))
        rows.append([what, cell(campaign, entry, SC, column, si), cell(campaign, entry, NATS, column, si), fmt_ratio(r)])
    rows.append(["lost (max)", lost_max(campaign, entry, SC), lost_max(campaign, entry, NATS), ""])
    out.append(table(["figure", SC, NATS, "ratio"], rows))
    out.append("")
    return "\n".join(out)


def section_idle(campaign):
    entry = "idle"
    out = ["## Idle connections", ""]
    if entry not in campaign.entries:
        return "\n".join(out + ["Not measured.", ""])
    conns = "—"
    for server in SERVERS:
        s = campaign.stat(entry, server, "subs")
        if s is not None:
            conns = fmt_num(s.median, si=False)
            break
    out += [
        "Connections that subscribe and then sit idle (`shardcast bench conns`), held for 2 s;",
        "the server's resident memory divided by the number of connections.",
        "",
    ]
    r = ratio(campaign.stat(entry, SC, "rss_per_conn_bytes"), campaign.stat(entry, NATS, "rss_per_conn_bytes"))
    out.append(table(
        ["connections", f"{SC} RSS/conn bytes", f"{NATS} RSS/conn bytes", "ratio (lower is better)",
         f"{SC} RSS bytes", f"{NATS} RSS bytes"],
        [[conns,
          cell(campaign, entry, SC, "rss_per_conn_bytes", si=False),
          cell(campaign, entry, NATS, "rss_per_conn_bytes", si=False),
          fmt_ratio(r),
          cell(campaign, entry, SC, "server_rss_bytes"),
          cell(campaign, entry, NATS, "server_rss_bytes")]],
    ))
    out.append("")
    return "\n".join(out)


def stalled_pairs(campaign):
    """(n, baseline entry, stalled entry) for every stalled-N with N > 0."""
    entries = stalled_entries(campaign)
    base = next((e for n, e in entries if n == 0), None)
    return [(n, base, e) for n, e in entries if n > 0]


def stalled_figures(campaign, server, base, stalled):
    """(kept throughput fraction, p99 growth factor), each None when not measured."""
    kept = growth = None
    if base is not None:
        kept = ratio(campaign.stat(stalled, server, "sub_msgs_per_s"), campaign.stat(base, server, "sub_msgs_per_s"))
        growth = ratio(campaign.stat(stalled, server, "lat_p99_us"), campaign.stat(base, server, "lat_p99_us"))
    return kept, growth


def section_stalled(campaign, charts):
    out = ["## Stalled subscribers", ""]
    pairs = stalled_pairs(campaign)
    if not pairs:
        return "\n".join(out + ["Not measured.", ""])
    out += [
        "50 healthy subscribers on one subject, 512 B messages as fast as possible, without and",
        "with subscribers that subscribe and never read. Deliveries/s, p99 and lost count the",
        "healthy subscribers only. Kept = with / without (higher is better); p99 growth =",
        "with / without (lower is better).",
        "",
    ]
    rows = []
    for n, base, stalled in pairs:
        for server in SERVERS:
            kept, growth = stalled_figures(campaign, server, base, stalled)
            rows.append([
                server, n,
                cell(campaign, base, server, "sub_msgs_per_s") if base else "not measured",
                cell(campaign, stalled, server, "sub_msgs_per_s"),
                fmt_pct(kept),
                cell(campaign, base, server, "lat_p99_us", si=False) if base else "not measured",
                cell(campaign, stalled, server, "lat_p99_us", si=False),
                fmt_ratio(growth),
                lost_max(campaign, stalled, server),
            ])
    out.append(table([
        "server", "stalled", "deliveries/s, 0 stalled", "deliveries/s, stalled", "kept throughput",
        "p99 µs, 0 stalled", "p99 µs, stalled", "p99 growth (lower is better)", "lost (max, stalled run)",
    ], rows))
    out.append("")
    out += charts.links(("stalled.png", "Stalled subscribers"))
    return "\n".join(out)


# --- targets -------------------------------------------------------------------------


def verdict(ok):
    return "not measured" if ok is None else ("**PASS**" if ok else "**MISS**")


def target_fanout(campaign, subs):
    entry = f"fanout-s{subs}-b{FANOUT_TARGET_SIZE}"
    sc, nats = campaign.stat(entry, SC, "sub_msgs_per_s"), campaign.stat(entry, NATS, "sub_msgs_per_s")
    sc_cpu, nats_cpu = (campaign.stat(entry, s, "server_cpu_us_per_msg") for s in SERVERS)
    if None in (sc, nats, sc_cpu, nats_cpu):
        return None, "—"
    cpu = ratio(sc_cpu, nats_cpu)
    ok = sc.median >= nats.median and cpu is not None and cpu <= CPU_RATIO_MAX
    text = (f"{fmt_num(sc.median)} vs {fmt_num(nats.median)} deliveries/s ({fmt_ratio(ratio(sc, nats))}); "
            f"CPU {sig3(sc_cpu.median)} vs {sig3(nats_cpu.median)} µs/delivery ({fmt_ratio(cpu)})")
    return ok, text


def target_bandwidth(campaign):
    best = None
    for subs, size, entry in fanout_entries(campaign):
        if size != 1024:
            continue
        share = iperf_share(campaign, entry, SC)
        if share is not None and (best is None or share > best[0]):
            best = (share, subs, campaign.stat(entry, SC, "sub_mb_per_s"))
    ceiling = campaign.iperf()
    if best is None or ceiling is None:
        return None, "—"
    share, subs, mb = best
    return share >= IPERF_SHARE_MIN, (f"1→{subs}: {sig3(mb.median * 8 / 1e3)} Gbit/s delivered = {fmt_pct(share)} "
                                      f"of {sig3(ceiling.median)} Gbit/s")


def target_latency(campaign):
    sc, nats = campaign.stat("latency", SC, "lat_p99_us"), campaign.stat("latency", NATS, "lat_p99_us")
    if sc is None or nats is None:
        return None, "—"
    return sc.median <= nats.median, f"p99 {sig3(sc.median)} vs {sig3(nats.median)} µs"


def target_idle(campaign):
    sc = campaign.stat("idle", SC, "rss_per_conn_bytes")
    if sc is None:
        return None, "—"
    return sc.median <= RSS_PER_CONN_MAX, f"{sc.median:.0f} bytes/connection"


def target_stalled(campaign):
    pairs = stalled_pairs(campaign)
    if not pairs:
        return None, "—"
    n, base, stalled = max(pairs)
    kept, growth = stalled_figures(campaign, SC, base, stalled)
    if kept is None or growth is None:
        return None, "—"
    ok = kept >= STALLED_KEPT_MIN and growth <= STALLED_P99_GROWTH_MAX
    return ok, f"{n} stalled: kept {fmt_pct(kept)}, p99 × {growth:.2f}"


def target_lost(campaign):
    checked, lossy, failed = 0, [], 0
    for (entry, server), group in campaign.groups.items():
        # drop_new sheds on purpose, and the server counts it (see the flow-control section).
        if server != SC or entry.startswith("policy-drop_new"):
            continue
        failed += len(group.failed)
        for row in group.rows:
            lost = number(row.get("lost"))
            if lost is None:
                continue
            checked += 1
            if lost > 0:
                lossy.append(f"`{entry}` lost {lost:.0f}")
    if checked == 0 and failed == 0:
        return None, "—"
    text = f"{checked} runs checked"
    if lossy:
        text += "; " + ", ".join(lossy)
    if failed:
        text += f"; {failed} shardcast run{'s' if failed > 1 else ''} failed (not checked)"
    return not lossy and not failed, text


def flow_helpers(campaign):
    """What report_flow needs from this module."""
    return types.SimpleNamespace(
        campaign=campaign, SC=SC, NATS=NATS, ratio=ratio, fmt_ratio=fmt_ratio, fmt_pct=fmt_pct,
        cell=cell, lost_max=lost_max, table=table, verdict=verdict, stalled_figures=stalled_figures,
    )


def section_targets(campaign):
    checks = [
        (f"(a) fan-out 1→{s} @ {FANOUT_TARGET_SIZE} B",
         f"deliveries/s ≥ nats-server and CPU/delivery ≤ {CPU_RATIO_MAX:g} × nats-server",
         *target_fanout(campaign, s))
        for s in FANOUT_TARGET_SUBS
    ]
    checks += [
        ("(b) 1024 B fan-out bandwidth", f"best 1024 B row ≥ {IPERF_SHARE_MIN * 100:.0f} % of iperf3",
         *target_bandwidth(campaign)),
        ("(c) latency", "p99 ≤ nats-server", *target_latency(campaign)),
        ("(d) idle connections", f"RSS/connection ≤ {RSS_PER_CONN_MAX} bytes", *target_idle(campaign)),
        ("(e) stalled subscribers",
         f"kept ≥ {STALLED_KEPT_MIN * 100:.0f} % throughput, p99 ≤ {STALLED_P99_GROWTH_MAX:g}×",
         *target_stalled(campaign)),
        ("(f) no loss", "0 lost in every shardcast run (except what a drop_new policy sheds, counted)",
         *target_lost(campaign)),
        ("(g) overload (flow control)",
         f"peak RSS ≤ {report_flow.OVERLOAD_RSS_RATIO_MAX:g}×, deliveries/s ≥ "
         f"{report_flow.OVERLOAD_RATE_RATIO_MIN:g}×, p99 ≤ {report_flow.OVERLOAD_P99_RATIO_MAX:g}× nats-server",
         *report_flow.target_overload(flow_helpers(campaign))),
        ("(h) IRC: one channel",
         f"deliveries/s ≥ {report_irc.RATE_RATIO_MIN:g}× ngircd at every size, 0 lost",
         *report_irc.target(flow_helpers(campaign))),
    ]
    rows = [[name, goal, measured, verdict(ok)] for name, goal, ok, measured in checks]
    return "\n".join([
        "## Targets",
        "",
        "Computed from the shardcast medians above.",
        "",
        table(["check", "target", "measured", "result"], rows),
        "",
    ])


def section_runs(campaign):
    out = ["## Runs", ""]
    bad = [r for r in campaign.runs if r.get("status") != "ok"]
    unclean = [r for r in campaign.runs if r.get("server") == SC and r.get("server_rc") not in ("", "0", None)]
    if not campaign.runs:
        return "\n".join(out + ["No runs recorded.", ""])
    if not bad and not unclean and not campaign.problems:
        out.append(f"All {len(campaign.runs)} runs succeeded.")
        out.append("")
        return "\n".join(out)
    out.append(f"{len(campaign.runs) - len(bad)} of {len(campaign.runs)} runs succeeded.")
    out.append("")
    if bad:
        out.append(table(["run", "entry", "server", "rep", "status", "log"],
                         [[r.get("run"), f"`{r.get('entry')}`", r.get("server"), r.get("rep"), r.get("status"),
                           f"`{r.get('log')}`"] for r in bad]))
        out.append("")
    for r in unclean:
        out.append(f"- run {r.get('run')} (`{r.get('entry')}`): shardcast exited with status "
                   f"{r.get('server_rc')} after SIGTERM.")
    for p in campaign.problems:
        out.append(f"- {p}")
    out.append("")
    return "\n".join(out)


# --- charts --------------------------------------------------------------------------


class Charts:
    """Draws the PNGs when matplotlib imports; remembers which ones exist for the links."""

    def __init__(self, img_dir, md_path):
        self.img_dir = img_dir
        self.rel = os.path.relpath(img_dir, os.path.dirname(os.path.abspath(md_path)) or ".")
        self.written = set()
        self.error = None
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            self.plt = plt
        except Exception as e:  # ImportError, or a broken backend
            self.plt = None
            self.error = f"{type(e).__name__}: {e}"

    def links(self, *charts):
        lines = []
        for name, title in charts:
            if name in self.written:
                lines.append(f"![{title}]({self.rel}/{name})")
                lines.append("")
        return lines

    def save(self, fig, name):
        os.makedirs(self.img_dir, exist_ok=True)
        fig.tight_layout()
        fig.savefig(os.path.join(self.img_dir, name), dpi=120)
        self.plt.close(fig)
        self.written.add(name)

    def grouped_bars(self, ax, labels, stats_by_server, log=False):
        """One bar per server per label at the median, min–max as error bars."""
        width = 0.8 / len(SERVERS)
        drawn = False
        for i, server in enumerate(SERVERS):
            xs, ys, lo, hi = [], [], [], []
            for j, stat in enumerate(stats_by_server[server]):
                x = j + (i - (len(SERVERS) - 1) / 2) * width
                if stat is None:  # say so, or a missing bar reads as zero
                    ax.text(x, 0.02, "no data", rotation=90, ha="center", va="bottom", fontsize=8,
                            color=COLORS[server], transform=ax.get_xaxis_transform())
                    continue
                xs.append(x)
                ys.append(stat.median)
                lo.append(stat.median - stat.lo)
                hi.append(stat.hi - stat.median)
            if xs:
                ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, label=server, color=COLORS[server])
                drawn = True
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels)
        if log and drawn:
            ax.set_yscale("log")
        ax.grid(axis="y", alpha=0.3)
        if drawn:
            ax.legend()
        return drawn

    def draw(self, campaign):
        if self.plt is not None:
            self.draw_fanout(campaign, "sub_msgs_per_s", 1e6, "deliveries/s (millions)", "fanout_msgs.png",
                             "Fan-out: aggregate deliveries/s")
            self.draw_fanout(campaign, "server_cpu_us_per_msg", 1, "server CPU µs per delivery", "fanout_cpu.png",
                             "Fan-out: server CPU per delivery (lower is better)")
            self.draw_latency(campaign)
            self.draw_stalled(campaign)
        for name in CHART_NAMES:  # a chart left from an earlier campaign would contradict the tables
            path = os.path.join(self.img_dir, name)
            if name not in self.written and os.path.exists(path):
                os.remove(path)

    def draw_fanout(self, campaign, column, div, ylabel, name, title):
        entries = fanout_entries(campaign)
        if not entries:
            return
        labels = [f"1→{s}\n{b} B" for s, b, _ in entries]
        stats = {srv: [scaled(campaign.stat(e, srv, column), div) for _, _, e in entries] for srv in SERVERS}
        fig, ax = self.plt.subplots(figsize=(max(8, 0.9 * len(entries) + 2), 4.5))
        if self.grouped_bars(ax, labels, stats):
            ax.set_ylabel(ylabel)
            ax.set_title(title)
            self.save(fig, name)
        else:
            self.plt.close(fig)

    def draw_latency(self, campaign):
        if "latency" not in campaign.entries:
            return
        labels = [n for n, _ in LATENCY_COLUMNS]
        stats = {srv: [campaign.stat("latency", srv, c) for _, c in LATENCY_COLUMNS] for srv in SERVERS}
        fig, ax = self.plt.subplots(figsize=(8, 4.5))
        if self.grouped_bars(ax, labels, stats, log=True):
            ax.set_ylabel("µs (log scale)")
            ax.set_title("Latency at 10,000 msgs/s to 100 subscribers (lower is better)")
            self.save(fig, "latency.png")
        else:
            self.plt.close(fig)

    def draw_stalled(self, campaign):
        pairs = stalled_pairs(campaign)
        if not pairs:
            return
        n, base, stalled = max(pairs)
        labels = ["0 stalled", f"{n} stalled"]
        fig, (left, right) = self.plt.subplots(1, 2, figsize=(10, 4.5))
        msgs = {srv: [scaled(campaign.stat(e, srv, "sub_msgs_per_s"), 1e6) if e else None for e in (base, stalled)]
                for srv in SERVERS}
        p99 = {srv: [campaign.stat(e, srv, "lat_p99_us") if e else None for e in (base, stalled)] for srv in SERVERS}
        drawn = self.grouped_bars(left, labels, msgs)
        drawn = self.grouped_bars(right, labels, p99) or drawn
        if drawn:
            left.set_ylabel("healthy deliveries/s (millions)")
            left.set_title("Throughput (higher is better)")
            right.set_ylabel("p99 µs")
            right.set_title("p99 latency (lower is better)")
            self.save(fig, "stalled.png")
        else:
            self.plt.close(fig)


def scaled(stat, div):
    if stat is None:
        return None
    s = Stat([stat.median / div])
    s.n, s.lo, s.hi = stat.n, stat.lo / div, stat.hi / div
    return s


# --- main ----------------------------------------------------------------------------


def report(campaign, charts, command):
    parts = [
        "# Benchmarks: shardcast and nats-server",
        "",
        "Generated by `benches/compare.sh`; do not edit by hand, rerun it:",
        "",
        "```sh",
        command or "benches/compare.sh",
        "```",
        "",
        "Both servers run on this machine, one after the other (shardcast, then nats-server, for",
        "every entry of every rep), each a fresh process on a fresh port, measured by the same",
        "load generator (`shardcast bench`), which runs on the same CPUs. Figures are the median",
        "over reps with the min–max range in parentheses; ratios are shardcast / nats-server.",
        "",
        "## Machine",
        "",
        "```",
        campaign.machine or "machine.txt missing",
        "```",
        "",
        "## Loopback ceiling",
        "",
    ]
    ceiling = campaign.iperf()
    if ceiling is None:
        parts.append("iperf3: not measured.")
    else:
        text = f"iperf3, one TCP stream over loopback: **{sig3(ceiling.median)} Gbit/s** (median"
        text += f" of {ceiling.n}, range {sig3(ceiling.lo)}–{sig3(ceiling.hi)})." if ceiling.n > 1 else " of 1)."
        parts.append(text)
    parts.append("")
    if charts.plt is None:
        parts += [f"Charts skipped: matplotlib could not be imported ({charts.error}).", ""]
    parts += [
        section_summary(campaign),
        section_fanout(campaign, charts),
        section_latency(campaign, charts),
        section_idle(campaign),
        section_stalled(campaign, charts),
        section_overload(campaign),
        report_flow.section(flow_helpers(campaign)),
        report_irc.section(flow_helpers(campaign)),
        section_targets(campaign),
        section_runs(campaign),
    ]
    return "\n".join(parts).rstrip() + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", required=True, help="results.csv written by `shardcast bench --csv`")
    ap.add_argument("--entries", required=True, help="runs.csv written by compare.sh")
    ap.add_argument("--iperf", help="iperf3.csv (rep,gbit_per_s)")
    ap.add_argument("--machine", help="machine.txt")
    ap.add_argument("--md", required=True, help="Markdown file to write")
    ap.add_argument("--img", required=True, help="directory for the PNG charts")
    ap.add_argument("--command", help="command line for the header (default: machine.txt's `command:`)")
    ap.add_argument("--notes", help="Markdown appended after the generated sections (hand-written analysis)")
    ap.add_argument("--splice", action="store_true",
                    help="a campaign of some entries only (compare.sh --only): replace the IRC section of "
                         "the existing --md and leave the rest of it, charts included, as it is")
    args = ap.parse_args()

    for path, what in ((args.results, "--results"), (args.entries, "--entries")):
        if not os.path.exists(path):
            print(f"report.py: {what} {path} does not exist", file=sys.stderr)
            return 1
    campaign = Campaign(args.results, args.entries, args.iperf, args.machine)
    if args.splice:
        return splice_into(campaign, args.md)
    charts = Charts(args.img, args.md)
    charts.draw(campaign)
    text = report(campaign, charts, args.command or campaign.machine_field("command"))
    if args.notes and os.path.exists(args.notes):
        with open(args.notes) as f:
            text = text.rstrip() + "\n\n" + f.read().rstrip() + "\n"
    if os.path.exists(args.md):
        # The log-ingest, security and cross-node sections come from benches/logs.sh,
        # benches/security.sh and benches/cluster.sh: carried over as they are.
        with open(args.md) as f:
            old = f.read()
        text = report_logs.carry_over(old, text)
        text = report_security.carry_over(old, text)
        text = report_cluster.carry_over(old, text)
    os.makedirs(os.path.dirname(os.path.abspath(args.md)), exist_ok=True)
    with open(args.md, "w") as f:
        f.write(text)
    charts_note = f"{len(charts.written)} charts in {args.img}" if charts.plt else "no charts (matplotlib missing)"
    print(f"report.py: wrote {args.md}, {charts_note}", file=sys.stderr)
    return 0


def splice_into(campaign, md):
    """Replaces the IRC section of `md` with this campaign's (the only section spliced so far)."""
    if not report_irc.irc_entries(campaign):
        print("report.py: --splice: this campaign has no IRC entries; nothing to replace", file=sys.stderr)
        return 1
    old = ""
    if os.path.exists(md):
        with open(md) as f:
            old = f.read()
    with open(md, "w") as f:
        f.write(report_irc.splice(old, report_irc.section(flow_helpers(campaign))))
    print(f"report.py: replaced the IRC section of {md}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
