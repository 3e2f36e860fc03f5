#!/usr/bin/env bash
# Makes a picture of irssi from a test that drives it (tests/common/irssi.rs): runs the
# test, which writes irssi's screen with its colours (SHARDCAST_IRSSI_SCREEN), turns the
# ANSI escapes into HTML with `aha`, and photographs that with headless Chromium.
#
#   scripts/irc_screenshot.sh                      tests/irc_client.rs -> docs/img/irc-irssi.png
#   scripts/irc_screenshot.sh TEST OUT.png         e.g. logs_walkthrough docs/img/logs-irssi.png
#                                                  or cluster_irssi docs/img/cluster-irssi.png
#
# irc_client chats in #room.lobby with a NATS client and a raw IRC client (docs/irc.md);
# logs_walkthrough follows docs/logs.md's walk-through into #logs.error; cluster_irssi
# is irssi on one node of two linked through a nats-server cluster (docs/cluster.md).
#
# Needs aha and chromium (Debian packages of the same names) besides what
# scripts/test.sh installs for the test itself.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $# -ne 0 && $# -ne 2 ]]; then
  echo "usage: scripts/irc_screenshot.sh [TEST OUT.png]" >&2
  exit 2
fi
test_name=${1:-irc_client}
out=${2:-docs/img/irc-irssi.png}

for cmd in aha chromium; do
  if ! command -v "$cmd" >/dev/null 2>&1; then
    echo "scripts/irc_screenshot.sh: $cmd is missing: apt-get install -y $cmd" >&2
    exit 1
  fi
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

SHARDCAST_IRSSI_SCREEN="$work/screen.ansi" scripts/test.sh --test "$test_name"
if [[ ! -s $work/screen.ansi ]]; then
  echo "scripts/irc_screenshot.sh: tests/$test_name.rs wrote no screen (SHARDCAST_IRSSI_SCREEN)" >&2
  exit 1
fi

# The screen is 100 columns by 18 rows (tests/common/irssi.rs): size the page to fit.
cols=100 rows=18 font_px=15 line_px=19 pad_px=14
{
  cat <<EOF
<!DOCTYPE html>
<html><head><meta charset="utf-8"><style>
  html, body { margin: 0; background: #000; }
  pre { margin: 0; padding: ${pad_px}px; color: #e5e5e5; background: #000;
        font: ${font_px}px/${line_px}px "DejaVu Sans Mono", monospace; }
  /* aha's classes, in a terminal's palette (Tango) rather than pure HTML colours */
  .reset { color: #e5e5e5; } .bg-reset { background: #000; } .dimgray { color: #888a85; }
  .red { color: #cc0000; } .green { color: #8ae234; } .yellow { color: #fce94f; }
  .blue { color: #729fcf; } .purple { color: #ad7fa8; } .cyan { color: #34e2e2; }
  .white { color: #d3d7cf; } .bg-black { background: #000; } .bg-red { background: #cc0000; }
  .bg-green { background: #4e9a06; } .bg-yellow { background: #c4a000; }
  .bg-blue { background: #204a87; } .bg-purple { background: #75507b; }
  .bg-cyan { background: #06989a; } .bg-white { background: #d3d7cf; }
  .bold { font-weight: bold; } .underline { text-decoration: underline; }
  /* bright colours (90-97), as irssi shows mIRC red (FATAL) beside brown (ERROR) */
  .highlighted.red { color: #ef2929; }
  .italic { font-style: italic; } .inverted { color: #000; } .bg-inverted { background: #e5e5e5; }
</style></head><body><pre>
EOF
  aha --no-header --stylesheet <"$work/screen.ansi"
  echo '</pre></body></html>'
} >"$work/screen.html"

width=$((cols * font_px * 602 / 1000 + 2 * pad_px + 4))
height=$((rows * line_px + 2 * pad_px))
sandbox=()
if [[ $(id -u) -eq 0 ]]; then
  sandbox=(--no-sandbox) # Chromium refuses to run as root with its sandbox
fi
mkdir -p "$(dirname "$out")"
chromium --headless "${sandbox[@]}" --disable-gpu --hide-scrollbars \
  --window-size="$width,$height" --screenshot="$(realpath -m "$out")" "file://$work/screen.html" 2>/dev/null
echo "scripts/irc_screenshot.sh: wrote $out (${width}x$height)"
