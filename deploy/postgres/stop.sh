#!/usr/bin/env bash
# Stop the server that start.sh started from $PG_DATA_DIR: pg_ctl stop -m fast (disconnects clients, rolls back
# their open transactions, shuts down cleanly), then -m immediate after PG_STOP_TIMEOUT_S (60). Succeeds when
# nothing is running.
set -euo pipefail
# shellcheck source=env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

say() { echo "stop.sh: $*" >&2; }

PG_BIN=$(pg_bin_dir)
if [ -z "$PG_BIN" ] || [ ! -f "$PG_DATA_DIR/postmaster.pid" ]; then
    say "no server running from $PG_DATA_DIR"
    exit 0
fi
# Something (a new pytest session resets its temporary root to 0700) may have taken the way in away again.
pg_grant_path "$PG_DATA_DIR"
if ! pg_running; then
    say "no server running from $PG_DATA_DIR"
    exit 0
fi

if ! as_pg "$PG_BIN/pg_ctl" stop -D "$PG_DATA_DIR" -m fast -w -t "$PG_STOP_TIMEOUT_S" >/dev/null 2>&1; then
    say "the server did not stop within ${PG_STOP_TIMEOUT_S} s; stopping it with -m immediate"
    if ! as_pg "$PG_BIN/pg_ctl" stop -D "$PG_DATA_DIR" -m immediate -w -t 30 >&2; then
        say "the server from $PG_DATA_DIR is still running"
        exit 1
    fi
fi
say "stopped PostgreSQL (data $PG_DATA_DIR)"
