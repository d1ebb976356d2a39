#!/usr/bin/env bash
# Install ouie with its test tools and run the whole test suite (the README's second command).
set -euo pipefail
cd "$(dirname "$0")/.."

# System tools the tests use for real: espeak-ng speaks the privacy test sentences.
if ! command -v espeak-ng >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq espeak-ng >/dev/null
    else
        echo "note: espeak-ng not installed; speech privacy tests will skip" >&2
    fi
fi

python3 -m pip install -q --disable-pip-version-check -e ".[dev,train]"
exec python3 -m pytest "$@"
