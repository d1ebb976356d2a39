#!/usr/bin/env bash
# Install ouie with its test tools and run the whole test suite (the README's second command).
set -euo pipefail
cd "$(dirname "$0")/.."

# System tools the tests use for real: espeak-ng speaks the privacy test sentences,
# Debian's chromium is the browser Playwright drives, mosquitto is the broker some
# integration tests start on their own port. Installed here when run as root.
missing=()
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
if [ "${#missing[@]}" -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -e ".[dev,train]"
# One line on stderr naming the services still missing (PostgreSQL, Mosquitto, Chromium,
# espeak-ng, fanotify, ...): their tests skip, or fail under OUIE_REQUIRE_SERVICES=1.
python3 -m tests._services || true  # a note only: never stops the run
exec python3 -m pytest "$@"
