#!/usr/bin/env bash
# Set up everything the harness needs on a Debian machine: system packages (as root),
# a Python 3.12 virtual environment in .venv, and the pinned Python dependencies.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")"

# haproxy: the testbed's load balancer. postgresql: the service's cluster database and the tests'.
# chromium: the headless browser the tests open reports in (offline, no browser download).
APT_PACKAGES=(haproxy postgresql chromium)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing ${missing[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: please install these Debian packages (as root): ${missing[*]}" >&2
  fi
fi

find_python() {
  for candidate in python3.12 "$(pyenv which python 2>/dev/null || true)" python3 python; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  echo "setup: Python 3.12 or newer is required (pyenv install 3.12, or apt-get install python3.12)" >&2
  return 1
}

if [ ! -x .venv/bin/python ]; then
  python=$(find_python)
  echo "setup: creating .venv with $("$python" --version)"
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[dev]"
echo "setup: ready ($(.venv/bin/harness --version))"
