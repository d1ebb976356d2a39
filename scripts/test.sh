#!/usr/bin/env bash
# Install ouie with its test tools and run the whole test suite (the README's second command).
set -euo pipefail
cd "$(dirname "$0")/.."

# System tools the tests use for real: espeak-ng speaks the privacy test sentences,
# Debian's chromium is the browser Playwright drives, mosquitto is the broker some
# integration tests start on their own port.
missing=()
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v mosquitto >/dev/null 2>&1 || missing+=(mosquitto)
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "note: not installed: ${missing[*]}; the tests that need them will skip" >&2
    fi
fi

python3 -m pip install -q --disable-pip-version-check -e ".[dev,train]"
exec python3 -m pytest "$@"
