#!/usr/bin/env bash
# Make sure Prometheus's tools are installed and print the path of promtool as the last line on stdout (everything
# else goes to stderr). Used by `make test` and the test suite's promtool fixture.
#
# Installs the Debian package `prometheus` (which ships promtool and the server) when no promtool is found on PATH
# or in PROMTOOL; needs root, runs `apt-get update` once per install. Two installs at the same time (two test
# sessions) take turns on a lock file instead of failing on dpkg's lock.
#
# Environment: PROMTOOL (a promtool to use instead), PROMETHEUS_INSTALL_LOCK (/tmp/recovery-prometheus-install.lock).
set -euo pipefail

say() { echo "install.sh: $*" >&2; }

find_promtool() {
    if [ -n "${PROMTOOL:-}" ]; then
        [ -x "$PROMTOOL" ] && echo "$PROMTOOL"
        return 0
    fi
    command -v promtool || true
}

found=$(find_promtool)
if [ -n "$found" ]; then
    echo "$found"
    exit 0
fi
if [ -n "${PROMTOOL:-}" ]; then
    say "PROMTOOL=$PROMTOOL is not an executable file"
    exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
    say "promtool is not installed and installing it needs root: apt-get install prometheus, or set PROMTOOL"
    exit 1
fi

exec 9>"${PROMETHEUS_INSTALL_LOCK:-/tmp/recovery-prometheus-install.lock}"
flock 9
found=$(find_promtool)  # another session may have installed it while we waited
if [ -z "$found" ]; then
    say "promtool is not installed: apt-get install prometheus"
    log=$(mktemp)
    # --no-install-recommends: the node exporter and friends are not needed here. policy-rc.d is left alone; in a
    # container without an init system the package's postinst only fails to start the service, which is fine.
    if ! { apt-get update -o DPkg::Lock::Timeout=300 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=300 \
            prometheus; } >"$log" 2>&1; then
        say "installing the prometheus package failed; apt-get's output:"
        cat "$log" >&2
        rm -f "$log"
        exit 1
    fi
    rm -f "$log"
    found=$(find_promtool)
    [ -n "$found" ] || { say "installed prometheus, but still no promtool on PATH"; exit 1; }
fi
say "$("$found" --version 2>&1 | head -n 1)"
echo "$found"
