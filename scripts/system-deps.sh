#!/usr/bin/env bash
# Install the Debian packages the test suite needs and the venv cannot provide:
#   chromium     renders the HTML report in a headless screenshot test (tests/report)
#   nats-server  the message broker the multi-process bridge tests start
#   tmux         runs `ml4t paper` in a real terminal for the live-view test (tests/live)
# Idempotent and quiet: does nothing when every package is present. Installs only when
# running as root (CI and the project's machines); otherwise names what is missing.
set -euo pipefail

PACKAGES=(chromium nats-server tmux)

missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "system-deps: missing Debian packages: ${missing[*]}" >&2
    echo "system-deps: run as root, or: sudo apt-get install -y ${missing[*]}" >&2
    exit 0
fi

echo "system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
