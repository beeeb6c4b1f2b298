#!/usr/bin/env bash
# Stop the broker that start.sh started from $KAFKA_DATA_DIR: SIGTERM (a clean shutdown), then SIGKILL after
# KAFKA_STOP_TIMEOUT_S (30). Succeeds when nothing is running.
set -euo pipefail
# shellcheck source=env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

say() { echo "stop.sh: $*" >&2; }

pid=$(kafka_pid)
if ! kafka_pid_alive "$pid"; then
    rm -f "$KAFKA_PID_FILE"
    say "no broker running from $KAFKA_DATA_DIR"
    exit 0
fi

kill -TERM "$pid" 2>/dev/null || true
deadline=$((SECONDS + KAFKA_STOP_TIMEOUT_S))
while kafka_pid_alive "$pid" && ((SECONDS < deadline)); do
    sleep 0.2
done
if kafka_pid_alive "$pid"; then
    say "pid $pid still running after ${KAFKA_STOP_TIMEOUT_S} s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 10))
    while kafka_pid_alive "$pid" && ((SECONDS < deadline)); do
        sleep 0.1
    done
    if kafka_pid_alive "$pid"; then
        say "pid $pid survived SIGKILL; pid file $KAFKA_PID_FILE kept"
        exit 1
    fi
fi
rm -f "$KAFKA_PID_FILE"
say "stopped the broker (pid $pid)"
