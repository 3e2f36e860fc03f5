"""The IRC section of docs/benchmarks.md (imported by report.py): S members in one channel and
one publisher, shardcast (publishing over NATS) against ngircd (an IRC publisher with +F),
and the target: at least twice ngircd's deliveries/s at every size, with nothing lost."""

import re

HEADING = "## IRC: one channel, shardcast and ngircd"
NGIRCD = "ngircd"
# Further IRC servers get a column when a campaign has runs of them.
OTHERS = ("inspircd",)
RATE_RATIO_MIN = 2.0


def irc_entries(campaign):
    """(members, entry) of every irc-S entry, sorted."""
    found = []
    for entry in campaign.entries:
        m = re.fullmatch(r"irc-(\d+)", entry)
        if m:
            found.append((int(m.group(1)), entry))
    return sorted(found)


def servers(r):
    """The servers to show: shardcast, ngircd, then any other IRC server that ran."""
    found = [r.SC, NGIRCD]
    for other in OTHERS:
        if any(r.campaign.group(e, other) for _, e in irc_entries(r.campaign)):
            found.append(other)
    return found


def lost_total(r, entry, server):
    """The largest loss of a group's runs, or None when it has no successful run."""
    group = r.campaign.group(entry, server)
    if group is None or not group.rows:
        return None
    values = group.values("lost")
    return max(values) if values else None


def target_entry(r, entry):
    """(ok, text) for one entry: shardcast ≥ 2× ngircd's deliveries/s and nothing lost."""
    sc = r.campaign.stat(entry, r.SC, "sub_msgs_per_s")
    ng = r.campaign.stat(entry, NGIRCD, "sub_msgs_per_s")
    lost = lost_total(r, entry, r.SC)
    if sc is None or ng is None or lost is None:
        return None, "—"
    ratio = r.ratio(sc, ng)
    ok = ratio is not None and ratio >= RATE_RATIO_MIN and lost == 0
    return ok, f"{r.fmt_ratio(ratio)} ngircd's deliveries/s, {lost:.0f} lost"


def target(r):
    """(ok, text) over every irc entry: the check in report.py's Targets table."""
    results = [(members, *target_entry(r, entry)) for members, entry in irc_entries(r.campaign)]
    measured = [(m, ok, text) for m, ok, text in results if ok is not None]
    if not measured:
        return None, "—"
    text = "; ".join(f"{m} members: {text}" for m, _, text in measured)
    return all(ok for _, ok, _ in measured) and len(measured) == len(results), text


def section(r):
    """The section, given the report module's helpers `r` (see report.flow_helpers)."""
    out = [HEADING, ""]
    entries = irc_entries(r.campaign)
    if not entries:
        return "\n".join(out + ["Not measured.", ""])
    shown = servers(r)
    out += [
        "S IRC clients register, join one channel and count the lines said there; then one",
        "publisher sends 128 B lines as fast as it can (`shardcast bench irc --subs S --msgs",
        "4M/S --size 128 --threads 2`, so each run delivers about 4 M lines). shardcast runs",
        "with its NATS port publishing to the channel's subject (`--irc-publisher nats`);",
        "ngircd gets an IRC publisher that is an IRC operator with user mode +F",
        "(`--irc-publisher irc --irc-oper …`), which lifts its flood throttling. Deliveries/s",
        "count every member's lines from the first to the last; latency is from the",
        "publisher's send time (in the line) to the member's read. Lost = lines a member never",
        "got (expected − received). The publisher is not held to a rate, so the latency here",
        "is mostly time spent queued behind it, not what a member sees at a sustainable rate.",
        "The generator shares the two CPUs with the server.",
        "",
    ]
    when = [r.campaign.machine_field(k) for k in ("date", "shardcast commit", "command")]
    if all(when):
        out += [f"Measured {when[0]} at shardcast commit {when[1][:12]}: `{when[2]}`.", ""]
    rows = []
    for members, entry in entries:
        for column, what, si in (
            ("sub_msgs_per_s", "deliveries/s", True),
            ("lat_p50_us", "p50 µs", False),
            ("lat_p99_us", "p99 µs", False),
            ("server_cpu_us_per_msg", "server CPU µs/delivery", False),
        ):
            ratio = r.ratio(r.campaign.stat(entry, r.SC, column), r.campaign.stat(entry, NGIRCD, column))
            rows.append([f"`{entry}`", what] + [r.cell(r.campaign, entry, s, column, si) for s in shown]
                        + [r.fmt_ratio(ratio)])
        rows.append([f"`{entry}`", "lost (max)"] + [r.lost_max(r.campaign, entry, s) for s in shown] + [""])
    out += [r.table(["entry", "figure", *shown, f"{r.SC} / {NGIRCD}"], rows), ""]
    checks = []
    for members, entry in entries:
        ok, text = target_entry(r, entry)
        checks.append([f"{members} members", text, r.verdict(ok)])
    out += [
        f"Target: at least {RATE_RATIO_MIN:g}× ngircd's deliveries/s at every size, with nothing lost.",
        "",
        r.table(["members", "measured", "result"], checks),
        "",
    ]
    unclean = [run for run in r.campaign.runs
               if run.get("entry", "").startswith("irc-") and run.get("server") == r.SC
               and run.get("server_rc") not in ("", "0", None)]
    for run in unclean:
        out.append(f"- run {run.get('run')} (`{run.get('entry')}`, rep {run.get('rep')}): shardcast exited "
                   f"with status {run.get('server_rc')} after SIGTERM (the bench run itself completed).")
    if unclean:
        out.append("")
    return "\n".join(out)


def splice(text, new_section, heading=HEADING):
    """`text` with its section under `heading` (the IRC one by default) replaced by
    `new_section` (inserted before the Targets section, or at the end, when it has none)."""
    lines = text.split("\n")
    start = next((i for i, l in enumerate(lines) if l.startswith(heading)), None)
    if start is None:
        at = next((i for i, l in enumerate(lines) if l.startswith("## Targets")), len(lines))
        return "\n".join(lines[:at] + new_section.rstrip("\n").split("\n") + [""] + lines[at:])
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "\n".join(lines[:start] + new_section.rstrip("\n").split("\n") + [""] + lines[end:])


def carry_over(old_text, new_text, heading):
    """`new_text` with `old_text`'s section under `heading`, if it had one."""
    lines = old_text.split("\n")
    start = next((i for i, line in enumerate(lines) if line.startswith(heading)), None)
    if start is None:
        return new_text
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return splice(new_text, "\n".join(lines[start:end]), heading)


def section_main(doc, section, heading, what):
    """The command line of a report that makes one section of docs/benchmarks.md:
    `RESULTS.csv [--machine machine.txt] [--splice FILE.md]`; `section(results, machine)`
    makes the text. Without --splice it is printed; with it, spliced in under `heading`."""
    import argparse
    import os
    import sys

    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("results", help="results.csv written by `shardcast bench --csv`")
    ap.add_argument("--machine", help="machine.txt of the campaign")
    ap.add_argument("--splice", metavar="MD", help="replace the section in this Markdown file")
    args = ap.parse_args()
    text = section(args.results, args.machine)
    if not args.splice:
        sys.stdout.write(text)
        return 0
    old = ""
    if os.path.exists(args.splice):
        with open(args.splice) as f:
            old = f.read()
    with open(args.splice, "w") as f:
        f.write(splice(old, text, heading))
    print(f"replaced the {what} section of {args.splice}", file=sys.stderr)
    return 0
