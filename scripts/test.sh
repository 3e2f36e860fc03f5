#!/usr/bin/env bash
# The test command: makes sure the programs the tests need are installed, raises the
# locked-memory limit io_uring needs, then runs `cargo test --workspace` with any
# arguments given here (e.g. `scripts/test.sh --test protocol`).
#
#   scripts/test.sh [cargo test args...]   install what is missing, then test
#   scripts/test.sh --deps-only            only install what is missing (CI runs clippy after)
#
# Missing programs are installed with apt-get when this runs as root or `sudo -n` works;
# otherwise the script stops and prints the exact command to run.
set -euo pipefail

# What the tests need: a command on PATH, the Debian package that provides it, and why.
# To add a peer a test talks to, add one line.
NEEDS=(
  # command     package          needed by
  "cc           build-essential  glommio's build script compiles its vendored liburing"
  "nats-server  nats-server      tests/bench.rs measures Debian's nats-server with the generator"
  "systemd-analyze systemd      tests/operations.rs verifies packaging/shardcast.service"
  "promtool     prometheus       tests/monitoring.rs checks /metrics with promtool check metrics"
  "chromium     chromium         tests/monitoring.rs loads the dashboard in headless Chromium"
  "node         nodejs           runs tests/browser/dashboard.mjs (playwright-core drives Chromium)"
  "logger       bsdutils         tests/logs.rs sends syslog over UDP and TCP with util-linux logger"
  "npm          npm              installs tests/browser's pinned packages (npm ci)"
  "irssi        irssi            tests/irc_client.rs and tests/logs_walkthrough.rs: a person in a real IRC client"
  "tmux         tmux             runs irssi in a detached terminal, types and reads its screen (tests/common/irssi.rs)"
  "nc           netcat-openbsd   tests/logs_walkthrough.rs runs docs/logs.md's NATS subscriber, nc speaking the protocol"
  "rsyslogd     rsyslog          tests/bench_logs.rs routes the log bench through rsyslog, the reference relay"
  "python3      python3          tests/lame_duck.rs runs a nats.py client (installed below in a virtualenv)"
)

cd "$(dirname "$0")/.."
# Debian installs some daemons (nats-server) in /usr/sbin, which is not on an ordinary
# user's PATH; the tests start them by name, so put the sbin directories on it.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

# The packages whose command is not on PATH, one per line.
missing_packages() {
  local line cmd pkg
  for line in "${NEEDS[@]}"; do
    read -r cmd pkg _ <<<"$line"
    command -v "$cmd" >/dev/null 2>&1 || echo "$pkg"
  done
}

# Installs packages "$@" with apt-get as root or through `sudo -n`, or stops with the command.
install_packages() {
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      echo "scripts/test.sh: missing packages: $*" >&2
      echo "Install them, then run this again:" >&2
      echo "  sudo apt-get update && sudo apt-get install -y $*" >&2
      exit 1
    fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "scripts/test.sh: missing packages (Debian names): $*; apt-get is not available here," >&2
    echo "so install the equivalent packages with this system's package manager." >&2
    exit 1
  fi
  echo "scripts/test.sh: installing $*" >&2
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

mapfile -t packages < <(missing_packages | sort -u)
if [[ ${#packages[@]} -gt 0 ]]; then
  install_packages "${packages[@]}"
  # A package that installed but did not provide its command is a wrong table entry.
  mapfile -t still < <(missing_packages)
  if [[ ${#still[@]} -gt 0 ]]; then
    echo "scripts/test.sh: installed, but a command is still missing (package: ${still[*]})" >&2
    exit 1
  fi
fi

# The browser harness's npm packages, from its lock file (again when the lock changes).
browser=tests/browser
if [[ ! -f $browser/node_modules/.package-lock.json ||
      $browser/package-lock.json -nt $browser/node_modules/.package-lock.json ]]; then
  echo "scripts/test.sh: npm ci in $browser" >&2
  (cd "$browser" && npm ci --no-audit --no-fund --loglevel=error)
fi

# tests/python's packages (nats.py), in a virtualenv under target/ (again when the list
# changes).
pyenv=target/test-python
if [[ ! -f $pyenv/.installed || tests/python/requirements.txt -nt $pyenv/.installed ]]; then
  echo "scripts/test.sh: pip install -r tests/python/requirements.txt into $pyenv" >&2
  python3 -m venv "$pyenv"
  "$pyenv/bin/pip" install -q --disable-pip-version-check -r tests/python/requirements.txt
  touch "$pyenv/.installed"
fi

if [[ ${1:-} == --deps-only ]]; then
  exit 0
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "scripts/test.sh: cargo is not installed; install Rust with https://rustup.rs" >&2
  exit 1
fi

# io_uring rings and buffers are charged to locked memory: root is exempt, other users
# need headroom (the server refuses to start under 512 KiB, see docs/configuration.md).
ulimit -l unlimited 2>/dev/null || ulimit -l 65536 2>/dev/null || true
if [[ $(id -u) -ne 0 && $(ulimit -l) != unlimited && $(ulimit -l) -lt 65536 ]]; then
  echo "scripts/test.sh: warning: locked-memory limit is $(ulimit -l) KiB and cannot be raised" >&2
  echo "here; tests that start servers may fail. Raise the hard limit (limits.conf, systemd" >&2
  echo "LimitMEMLOCK=, docker --ulimit memlock=-1:-1)." >&2
fi

exec cargo test --workspace "$@"
