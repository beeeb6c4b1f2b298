#!/usr/bin/env bash
# Start a single-node KRaft Kafka broker in the background and wait until it answers metadata requests.
# Idempotent: a broker already running from the same data dir is reused.
#
# Environment: KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (KAFKA_PORT+1), KAFKA_DATA_DIR (.cache/data here),
# KAFKA_VERSION (4.1.1), KAFKA_HEAP_OPTS, KAFKA_START_TIMEOUT_S (90), KAFKA_PYTHON (a python with kafka-python
# for the readiness check; default the repo's .venv).
set -euo pipefail
# shellcheck source=env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

bootstrap="$KAFKA_HOST:$KAFKA_PORT"
props="$KAFKA_DATA_DIR/server.properties"
server_log="$KAFKA_DATA_DIR/server.log"
console_log="$KAFKA_DATA_DIR/kafka.out"
log4j_opts=(-Dkafka.logs.dir="$KAFKA_DATA_DIR" -Dlog4j2.configurationFile="$KAFKA_DEPLOY_DIR/log4j2.yaml")

say() { echo "start.sh: $*" >&2; }

show_logs() {
    local f
    for f in "$server_log" "$console_log"; do
        if [ -s "$f" ]; then
            echo "---- last lines of $f" >&2
            tail -n 30 "$f" >&2
        fi
    done
}

# A python that can import kafka-python, for a real metadata request; empty if there is none.
pick_python() {
    local py
    for py in "${KAFKA_PYTHON:-}" "$KAFKA_REPO_ROOT/.venv/bin/python"; do
        if [ -n "$py" ] && [ -x "$py" ] && "$py" -c 'import kafka' 2>/dev/null; then
            echo "$py"
            return
        fi
    done
}

# Succeeds once the broker lists itself, unfenced, in a DescribeCluster response (or, without kafka-python, accepts connections).
ready() {
    port_open "$KAFKA_PORT" || return 1
    [ -n "$python" ] || return 0
    "$python" - "$bootstrap" <<'PY' 2>/dev/null
import sys

from kafka import KafkaAdminClient

admin = KafkaAdminClient(bootstrap_servers=sys.argv[1], request_timeout_ms=5000)
try:
    brokers = admin.describe_cluster()["brokers"]
    sys.exit(0 if any(not broker.get("is_fenced") for broker in brokers) else 1)
finally:
    admin.close()
PY
}

wait_ready() {
    local pid=$1 deadline=$((SECONDS + KAFKA_START_TIMEOUT_S))
    until ready; do
        if ! kafka_pid_alive "$pid"; then
            say "the broker (pid $pid) exited during start-up"
            rm -f "$KAFKA_PID_FILE"
            show_logs
            exit 1
        fi
        if ((SECONDS >= deadline)); then
            say "the broker (pid $pid) did not answer on $bootstrap within ${KAFKA_START_TIMEOUT_S} s; stopping it"
            show_logs
            "$KAFKA_DEPLOY_DIR/stop.sh" >&2 || true
            exit 1
        fi
        sleep 0.5
    done
}

python=$(pick_python)
[ -n "$python" ] || say "no python with kafka-python found: readiness means only that $bootstrap accepts connections"

ports_file="$KAFKA_DATA_DIR/ports"
pid=$(kafka_pid)
if kafka_pid_alive "$pid"; then
    if [ -f "$ports_file" ] && [ "$(cat "$ports_file")" != "$KAFKA_PORT $KAFKA_CONTROLLER_PORT" ]; then
        say "a broker (pid $pid) already runs from $KAFKA_DATA_DIR on ports $(cat "$ports_file"), not $KAFKA_PORT $KAFKA_CONTROLLER_PORT"
        exit 1
    fi
    wait_ready "$pid"
    say "already running: Kafka on $bootstrap (pid $pid, data $KAFKA_DATA_DIR)"
    exit 0
fi
rm -f "$KAFKA_PID_FILE"

"$KAFKA_DEPLOY_DIR/fetch.sh" >/dev/null
classpath="$KAFKA_LIBS_DIR/*"

for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    if port_open "$port"; then
        say "port $KAFKA_HOST:$port is already in use by another process (not a broker started from $KAFKA_DATA_DIR)"
        say "stop it, or pick other ports with KAFKA_PORT / KAFKA_CONTROLLER_PORT"
        exit 1
    fi
done

mkdir -p "$KAFKA_DATA_DIR"
{
    cat "$KAFKA_DEPLOY_DIR/server.properties"
    echo
    echo "# ---- written by start.sh"
    echo "log.dirs=$KAFKA_DATA_DIR/kraft-logs"
    echo "controller.quorum.bootstrap.servers=$KAFKA_HOST:$KAFKA_CONTROLLER_PORT"
    echo "listeners=PLAINTEXT://$bootstrap,CONTROLLER://$KAFKA_HOST:$KAFKA_CONTROLLER_PORT"
    echo "advertised.listeners=PLAINTEXT://$bootstrap,CONTROLLER://$KAFKA_HOST:$KAFKA_CONTROLLER_PORT"
} >"$props"

# Format once. A formatted data dir may be restarted on other ports: the controller updates its own endpoint.
if [ ! -f "$KAFKA_DATA_DIR/kraft-logs/meta.properties" ]; then
    cluster_id=$(java "${log4j_opts[@]}" -cp "$classpath" kafka.tools.StorageTool random-uuid)
    if ! java "${log4j_opts[@]}" -cp "$classpath" kafka.tools.StorageTool format --standalone \
        --cluster-id "$cluster_id" --config "$props" --ignore-formatted >"$KAFKA_DATA_DIR/format.out" 2>&1; then
        say "formatting $KAFKA_DATA_DIR/kraft-logs failed"
        cat "$KAFKA_DATA_DIR/format.out" >&2
        exit 1
    fi
fi

started=$SECONDS
# setsid: the broker outlives this script and ignores Ctrl-C meant for whoever started it; stop.sh ends it.
# shellcheck disable=SC2086  # KAFKA_HEAP_OPTS holds several options
setsid java $KAFKA_HEAP_OPTS -XX:+UseG1GC -Djava.awt.headless=true "${log4j_opts[@]}" \
    -cp "$classpath" kafka.Kafka "$props" >"$console_log" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$KAFKA_PID_FILE"
echo "$KAFKA_PORT $KAFKA_CONTROLLER_PORT" >"$ports_file"
wait_ready "$pid"
say "Kafka $KAFKA_VERSION ready on $bootstrap in $((SECONDS - started)) s (pid $pid)"
say "logs: $server_log, $console_log; stop with deploy/kafka/stop.sh (same KAFKA_DATA_DIR)"
