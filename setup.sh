#!/usr/bin/env bash
# Set up everything the harness needs on a Debian machine: system packages (as root, or through
# sudo where it needs no password, as on a hosted CI runner), a Python 3.12 virtual environment in
# .venv, and the pinned Python dependencies. Safe to run again: it only installs what is missing.
set -euo pipefail

# haproxy: the testbed's load balancer. postgresql: the service's cluster database and the tests'.
# chromium: the headless browser the tests open reports in (offline, no browser download).
APT_PACKAGES=(haproxy postgresql chromium)

# Install the missing Debian packages: as root, else with `sudo -n` (never a password prompt);
# when neither can, stop and say which packages and the command that installs them.
install_system_packages() {
  local missing=() pkg
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  local as_root=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      as_root=(sudo -n)
    else
      echo "setup: these Debian packages are missing: ${missing[*]}" >&2
      echo "setup: install them as root, then run ./setup.sh again:" >&2
      echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
      return 1
    fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: these Debian packages are missing and there is no apt-get to install them: ${missing[*]}" >&2
    return 1
  fi
  echo "setup: installing ${missing[*]}${as_root:+ (with ${as_root[*]})}"
  "${as_root[@]}" apt-get update -q >/dev/null
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

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

main() {
  cd "$(dirname "$0")"
  install_system_packages
  if [ ! -x .venv/bin/python ]; then
    python=$(find_python)
    echo "setup: creating .venv with $("$python" --version)"
    "$python" -m venv .venv
  fi
  .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[dev]"
  echo "setup: ready ($(.venv/bin/harness --version))"
}

# Sourced (tests call install_system_packages alone), nothing runs.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
