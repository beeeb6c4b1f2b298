#!/usr/bin/env bash
# The demo behind `make demo`: a local Kafka broker, `recovery serve` on SQLite, and `recovery simulate` feeding it.
# Tasks and gestures are printed as they are raised, with a summary per playbook and queue every few seconds; the task
# page (cases to work on) and the reports (the loss review) are linked, signed in.
# Ctrl-C stops everything cleanly (simulator, service, broker) and shows the cases.
#
# Environment: DEMO_DURATION_S (0 = until Ctrl-C), DEMO_RATE (events/s, 40), DEMO_CUSTOMERS (500),
# DEMO_TIME_SCALE (simulated seconds per real second, 600: a 2-hour outage takes 12 s), DEMO_KAFKA_PORT (19092),
# DEMO_KAFKA_CONTROLLER_PORT (DEMO_KAFKA_PORT + 1), DEMO_HTTP_PORT (8000), DEMO_DIR (.cache/demo; its broker data and
# store are wiped at each start), BIN (the venv's bin).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BIN=${BIN:-$PWD/.venv/bin}
DEMO_DIR=${DEMO_DIR:-.cache/demo}
case "$DEMO_DIR" in /*) ;; *) DEMO_DIR=$PWD/$DEMO_DIR ;; esac
DEMO_DURATION_S=${DEMO_DURATION_S:-0}
DEMO_RATE=${DEMO_RATE:-40}
DEMO_CUSTOMERS=${DEMO_CUSTOMERS:-500}
DEMO_TIME_SCALE=${DEMO_TIME_SCALE:-600}
export KAFKA_PORT=${DEMO_KAFKA_PORT:-19092}
export KAFKA_CONTROLLER_PORT=${DEMO_KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}
export KAFKA_DATA_DIR=$DEMO_DIR/kafka
export KAFKA_PYTHON=$BIN/python
export RECOVERY_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$KAFKA_PORT
export RECOVERY_STORE_URL=sqlite:///$DEMO_DIR/recovery.db
export RECOVERY_RULES_DIR=rules
export RECOVERY_KAFKA_SESSION_TIMEOUT_S=6
# Simulated time runs DEMO_TIME_SCALE times faster than the wall clock, so the events are soon dated ahead of it (an
# hour after 6 seconds at 600x): the service takes them for up to 10 years ahead instead of 1 hour (max_future_skew_s).
export RECOVERY_MAX_FUTURE_SKEW_S=${RECOVERY_MAX_FUTURE_SKEW_S:-315360000}
export RECOVERY_HTTP_PORT=${DEMO_HTTP_PORT:-8000}
# The task page and API accept one admin token, made for this run (only its SHA-256 is in the settings).
DEMO_TOKEN=${DEMO_TOKEN:-demo-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')}
export RECOVERY_API_TOKENS="[{\"name\":\"demo\",\"role\":\"admin\",\"token_sha256\":\"$(printf %s "$DEMO_TOKEN" | sha256sum | cut -d' ' -f1)\"}]"
# A demo's convenience, off by default: the printed link signs in (the token is in the URL, so in the history).
export RECOVERY_HTTP_TOKEN_IN_URL=true
TASK_PAGE="http://127.0.0.1:$RECOVERY_HTTP_PORT/?token=$DEMO_TOKEN"
# The report of the simulated period: simulated time runs DEMO_TIME_SCALE times faster than the wall clock, so it
# reaches past "now" (the report's default end) at once; 60 days cover 2.4 hours of the demo at 600x.
REPORT_FROM=$(date -u -d '-1 day' +%Y-%m-%dT%H:%M:%SZ)
REPORT_TO=$(date -u -d '+60 days' +%Y-%m-%dT%H:%M:%SZ)
REPORTS="http://127.0.0.1:$RECOVERY_HTTP_PORT/reports?from=$REPORT_FROM&to=$REPORT_TO&token=$DEMO_TOKEN"

serve_pid=""
simulate_pid=""
stopped=0

say() { printf '\n== %s\n' "$*"; }

finish() {
    [ "$stopped" = 1 ] && return
    stopped=1
    trap '' INT TERM
    say "stopping: simulator, service (it finishes its batch and commits), broker"
    [ -n "$simulate_pid" ] && kill -TERM "$simulate_pid" 2>/dev/null || true
    [ -n "$simulate_pid" ] && wait "$simulate_pid" 2>/dev/null || true
    [ -n "$serve_pid" ] && kill -TERM "$serve_pid" 2>/dev/null || true
    [ -n "$serve_pid" ] && wait "$serve_pid" 2>/dev/null || true
    deploy/kafka/stop.sh >/dev/null 2>&1 || true
    if [ -f "$DEMO_DIR/recovery.db" ]; then
        say "the cases: one per customer in distress, their tasks together (most urgent, then most valuable, first)"
        "$BIN/recovery" cases --store "$RECOVERY_STORE_URL" --limit 15 || true
        cat <<MSG

All cases:     $BIN/recovery cases --store $RECOVERY_STORE_URL --limit 0
All tasks:     $BIN/recovery tasks --store $RECOVERY_STORE_URL --limit 0
One queue:     $BIN/recovery tasks --store $RECOVERY_STORE_URL --queue care-callback
The report:    $BIN/recovery report --store $RECOVERY_STORE_URL --from $REPORT_FROM --to $REPORT_TO --out report.html
Service log:   $DEMO_DIR/serve.log
Task page:     $TASK_PAGE (while the service runs)
Reports:       $REPORTS (while the service runs)
MSG
    fi
}
trap 'finish; exit 0' INT TERM
trap finish EXIT

rm -rf "$DEMO_DIR/kafka" "$DEMO_DIR"/recovery.db*
mkdir -p "$DEMO_DIR"
say "starting a local Kafka broker on 127.0.0.1:$KAFKA_PORT (first run downloads it from Maven Central)"
deploy/kafka/start.sh

say "starting recovery serve (SQLite store $DEMO_DIR/recovery.db; log in $DEMO_DIR/serve.log)"
"$BIN/recovery" --log-level INFO serve --live --summary-every 10 2>"$DEMO_DIR/serve.log" &
serve_pid=$!
say "the task page (live cases and their tasks; claim and complete them): $TASK_PAGE"
say "the reports (the loss review: customers lost, their value, what was done before): $REPORTS"
echo "   the API: curl -H 'Authorization: Bearer $DEMO_TOKEN' http://127.0.0.1:$RECOVERY_HTTP_PORT/api/tasks"

say "simulating $DEMO_CUSTOMERS customers at $DEMO_RATE events/s, ${DEMO_TIME_SCALE}x time: calls, complaints, outages," \
    "payments, cancellations, customers joining, referring, renewing and lost (Ctrl-C to stop)"
"$BIN/recovery" simulate --customers "$DEMO_CUSTOMERS" --rate "$DEMO_RATE" --time-scale "$DEMO_TIME_SCALE" \
    --duration "$DEMO_DURATION_S" --seed 7 2>"$DEMO_DIR/simulate.log" &
simulate_pid=$!

wait "$simulate_pid" || true
simulate_pid=""
# A timed run: give the service a moment to finish what was sent, then stop.
sleep 5
finish
