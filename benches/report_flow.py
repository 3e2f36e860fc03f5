"""The flow-control section of docs/benchmarks.md (imported by report.py): rate-limit
accuracy, the overload entry's memory and throughput against nats-server, and the
healthy subscribers' throughput with three stalled ones under each slow-consumer policy."""

import re

# Part 3 of the flow-control issue, checked on the overload entry.
OVERLOAD_RSS_RATIO_MAX = 1.0
OVERLOAD_RATE_RATIO_MIN = 2.0
OVERLOAD_P99_RATIO_MAX = 1.0


def ratelimit_entries(campaign):
    """(configured msgs/s, entry) of every ratelimit-N entry."""
    found = []
    for entry in campaign.entries:
        m = re.fullmatch(r"ratelimit-(\d+)", entry)
        if m:
            found.append((int(m.group(1)), entry))
    return sorted(found)


def target_overload(r):
    """(ok, text) for part 3: RSS ≤ 1×, deliveries ≥ 2×, p99 ≤ 1× nats-server."""
    campaign, SC, NATS = r.campaign, r.SC, r.NATS
    stats = {c: (campaign.stat("overload", SC, c), campaign.stat("overload", NATS, c))
             for c in ("server_rss_peak_bytes", "sub_msgs_per_s", "lat_p99_us")}
    if any(None in pair for pair in stats.values()):
        return None, "—"
    rss, rate, p99 = (r.ratio(*stats[c]) for c in ("server_rss_peak_bytes", "sub_msgs_per_s", "lat_p99_us"))
    ok = rss <= OVERLOAD_RSS_RATIO_MAX and rate >= OVERLOAD_RATE_RATIO_MIN and p99 <= OVERLOAD_P99_RATIO_MAX
    return ok, f"peak RSS {r.fmt_ratio(rss)}, deliveries/s {r.fmt_ratio(rate)}, p99 {r.fmt_ratio(p99)}"


def dropped_cell(campaign, entry, server, column):
    group = campaign.group(entry, server)
    if not group:
        return "—"
    values = [v for v in group.values(column) if v is not None]
    if not values:
        return "—"
    return f"{max(values):,.0f}"


def section(r):
    """The section, given the report module `r` (its helpers and the campaign)."""
    campaign, SC, NATS = r.campaign, r.SC, r.NATS
    out = ["## Flow control", ""]
    out += [
        "What `[rate_limit]`, `[memory]` and `[slow_consumer]` do under load (see",
        "[flow-control.md](flow-control.md)). The entries below named `ratelimit-*` and",
        "`policy-*` run shardcast alone with the configuration they name.",
        "",
        "### Rate-limit accuracy",
        "",
    ]
    rows = []
    for rate, entry in ratelimit_entries(campaign):
        stat = campaign.stat(entry, SC, "sub_msgs_per_s")
        measured = r.cell(campaign, entry, SC, "sub_msgs_per_s")
        accuracy = r.fmt_ratio(stat.median / rate) if stat else "—"
        rows.append([f"`{entry}`", f"{rate:,}", measured, accuracy, r.lost_max(campaign, entry, SC)])
    if rows:
        out += [
            "One publisher as fast as it can, limited by `rate_limit.msgs_per_sec`; one subscriber",
            "counts what the server let through (first to last delivery, so the burst of a tenth",
            "of a second is included).",
            "",
            r.table(["entry", "limit msgs/s", "delivered msgs/s", "measured / limit", "lost (max)"], rows),
            "",
        ]
    else:
        out += ["Not measured.", ""]

    out += ["### Overload: memory and throughput against nats-server", ""]
    ok, text = target_overload(r)
    out += [
        "The `overload` entry (two publishers as fast as they can, 3 subjects, 100 subscribers;",
        f"table in [Overload](#overload-two-publishers-as-fast-as-possible)). The goal: peak RSS ≤ "
        f"{OVERLOAD_RSS_RATIO_MAX:g}× nats-server's, deliveries/s ≥ {OVERLOAD_RATE_RATIO_MIN:g}×, "
        f"p99 ≤ {OVERLOAD_P99_RATIO_MAX:g}×: {text}, {r.verdict(ok)}.",
        "",
    ]

    out += ["### Three stalled subscribers under each policy", ""]
    base = "stalled-0"
    rows = []
    cases = [
        ("`disconnect` (default)", "stalled-3", SC),
        ("`drop_new`", "policy-drop_new", SC),
        ("`stall_publishers`", "policy-stall_publishers", SC),
        ("nats-server", "stalled-3", NATS),
    ]
    for name, entry, server in cases:
        if campaign.group(entry, server) is None:
            continue
        kept, growth = r.stalled_figures(campaign, server, base, entry)
        rows.append([
            name,
            r.cell(campaign, entry, server, "sub_msgs_per_s"),
            r.fmt_pct(kept) if kept is not None else "—",
            r.cell(campaign, entry, server, "lat_p99_us", si=False),
            r.lost_max(campaign, entry, server),
            dropped_cell(campaign, entry, server, "server_dropped_drop_new"),
            dropped_cell(campaign, entry, server, "server_slow_consumers"),
        ])
    if rows:
        out += [
            "50 subscribers read, 3 more never do (`pubsub --subs 50 --stalled 3`, 512 B). *Kept* is",
            "the healthy subscribers' deliveries/s against `stalled-0` (no stalled one) on the same",
            "server; *lost* counts what healthy subscribers missed, *dropped* what the server shed",
            "by policy (from its `/varz`, all subscribers), *slow consumers* the connections it",
            "closed.",
            "",
            r.table(["policy", "healthy deliveries/s", "kept", "p99 µs", "lost (max)",
                     "dropped by drop_new (max)", "slow consumers closed (max)"], rows),
            "",
        ]
    else:
        out += ["Not measured.", ""]
    return "\n".join(out)
