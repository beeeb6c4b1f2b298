#!/usr/bin/env bash
# Headless Chromium and its WebDriver for the browser test of the task page (tests/api/test_page_browser.py):
# Debian's `chromium` and `chromium-driver`, installed with apt-get when missing. Prints the two paths.
set -euo pipefail

find_browser() { command -v chromium || command -v chromium-browser || true; }

if [ -z "$(find_browser)" ] || ! command -v chromedriver >/dev/null; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq >&2
    $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >&2
fi
echo "$(find_browser)"
command -v chromedriver
