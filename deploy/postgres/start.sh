#!/usr/bin/env bash
# Start a local PostgreSQL for recovery in the background and wait until it accepts connections; prints its URL
# (postgresql://postgres@127.0.0.1:PORT/DATABASE) as the last line on stdout, everything else goes to stderr.
# Idempotent: a server already running from the same data dir is reused.
#
# Installs the Debian package `postgresql` when no /usr/lib/postgresql/*/bin/pg_ctl is found (needs root), creates
# the cluster in PG_DATA_DIR once (superuser `postgres`, trust authentication: for development and tests only),
# listens on 127.0.0.1 only, with its unix socket in the data dir, and creates PG_DATABASE if missing.
#
# Environment: PG_PORT (55432), PG_DATABASE (recovery), PG_DATA_DIR (.cache/data here), PG_SOCKET_DIR (the data
# dir), PG_START_TIMEOUT_S (60), PG_EXTRA_CONF (postgresql.conf lines), PG_BIN_DIR (where pg_ctl is),
# PG_OS_USER (postgres: the server's system user when run as root).
set -euo pipefail
# shellcheck source=env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

say() { echo "start.sh: $*" >&2; }

show_log() {
    if [ -s "$PG_LOG_FILE" ]; then
        echo "---- last lines of $PG_LOG_FILE" >&2
        tail -n 30 "$PG_LOG_FILE" >&2
    fi
}

install_postgres() {
    if [ "$(id -u)" -ne 0 ]; then
        say "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/pg_ctl) and installing it needs root:"
        say "apt-get install postgresql, or point PG_BIN_DIR at a folder holding pg_ctl"
        exit 1
    fi
    say "PostgreSQL is not installed: apt-get install postgresql"
    local log
    log=$(mktemp)
    # A second install at the same time (another test session) waits for dpkg's lock instead of failing.
    if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y -o DPkg::Lock::Timeout=300 postgresql; } \
        >"$log" 2>&1; then
        say "installing the postgresql package failed; apt-get's output:"
        cat "$log" >&2
        rm -f "$log"
        exit 1
    fi
    rm -f "$log"
}

# Succeeds once the server accepts connections on $PG_HOST:$PG_PORT, or fails after $1 seconds.
wait_ready() {
    local deadline=$((SECONDS + $1))
    until as_pg "$PG_BIN/pg_isready" -q -h "$PG_HOST" -p "$PG_PORT" -d postgres -t 2; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

create_database() {
    # \gexec runs the generated CREATE DATABASE only when the database is missing.
    if ! as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -v db="$PG_DATABASE" -h "$PG_HOST" -p "$PG_PORT" \
        -U "$PG_SUPERUSER" -d postgres >/dev/null <<'SQL'; then
SELECT format('CREATE DATABASE %I', :'db') WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db')
\gexec
SQL
        say "could not create the database $PG_DATABASE"
        exit 1
    fi
}

ready_and_print() {
    create_database
    pg_url
}

PG_BIN=$(pg_bin_dir)
if [ -z "$PG_BIN" ]; then
    install_postgres
    PG_BIN=$(pg_bin_dir)
    [ -n "$PG_BIN" ] || { say "installed postgresql, but still no /usr/lib/postgresql/*/bin/pg_ctl"; exit 1; }
fi
if [ "$(id -u)" -eq 0 ] && ! id -u "$PG_OS_USER" >/dev/null 2>&1; then
    say "system user $PG_OS_USER does not exist (the postgresql package creates it; or set PG_OS_USER)"
    exit 1
fi

socket="$PG_SOCKET_DIR/.s.PGSQL.$PG_PORT"
if ((${#socket} > 107)); then
    say "the unix socket path $socket is longer than 107 bytes: pick a shorter PG_DATA_DIR or set PG_SOCKET_DIR"
    exit 1
fi

parent=$(dirname "$PG_DATA_DIR")
mkdir -p "$parent"
# Two starts at once on the same data dir (two shells) take turns. The lock lives next to the data dir, since
# initdb wants an empty one; fd 9 is closed for the server so that it does not hold the lock while it runs.
exec 9>"$parent/.$(basename "$PG_DATA_DIR").lock"
flock 9
pg_grant_path "$PG_DATA_DIR"

if pg_running; then
    running_port=$(pg_running_port)
    if [ "$running_port" != "$PG_PORT" ]; then
        say "a server already runs from $PG_DATA_DIR on port $running_port, not $PG_PORT"
        exit 1
    fi
    if ! wait_ready "$PG_START_TIMEOUT_S"; then
        say "a server runs from $PG_DATA_DIR but does not answer on $PG_HOST:$PG_PORT within ${PG_START_TIMEOUT_S} s"
        show_log
        exit 1
    fi
    say "already running: PostgreSQL on $PG_HOST:$PG_PORT (data $PG_DATA_DIR)"
    ready_and_print
    exit 0
fi

if port_open "$PG_PORT"; then
    say "port $PG_HOST:$PG_PORT is already in use by another process (not a server started from $PG_DATA_DIR)"
    say "stop it, or pick another port with PG_PORT"
    exit 1
fi

# Create the cluster once. initdb wants the data dir empty (or missing) and owned by the server's user.
if [ ! -f "$PG_DATA_DIR/PG_VERSION" ]; then
    mkdir -p "$PG_DATA_DIR"
    [ "$(id -u)" -ne 0 ] || chown "$PG_OS_USER:" "$PG_DATA_DIR"
    chmod 700 "$PG_DATA_DIR"
    init_log=$(mktemp)
    # --no-locale: byte-order collation, the same on every machine.
    if ! as_pg "$PG_BIN/initdb" -D "$PG_DATA_DIR" -U "$PG_SUPERUSER" --auth=trust --encoding=UTF8 --no-locale \
        >"$init_log" 2>&1; then
        say "initdb $PG_DATA_DIR failed:"
        cat "$init_log" >&2
        rm -f "$init_log"
        exit 1
    fi
    rm -f "$init_log"
    echo "include_if_exists = 'start.conf'  # written by deploy/postgres/start.sh" |
        as_pg tee -a "$PG_DATA_DIR/postgresql.conf" >/dev/null
fi

# Written on every start, so that a cluster may be restarted on another port.
quote() { printf "'%s'" "${1//\'/\'\'}"; }
{
    echo "# written by deploy/postgres/start.sh on each start"
    echo "listen_addresses = $(quote "$PG_HOST")"
    echo "port = $PG_PORT"
    echo "unix_socket_directories = $(quote "$PG_SOCKET_DIR")"
    [ -z "$PG_EXTRA_CONF" ] || printf '%s\n' "$PG_EXTRA_CONF"
} | as_pg tee "$PG_DATA_DIR/start.conf" >/dev/null

started=$SECONDS
# setsid: the server outlives this script and ignores Ctrl-C meant for whoever started it; stop.sh ends it.
# pg_ctl -w returns once the server is ready, or fails if it exits or does not get there in time.
if ! as_pg setsid -w "$PG_BIN/pg_ctl" start -s -D "$PG_DATA_DIR" -l "$PG_LOG_FILE" -w -t "$PG_START_TIMEOUT_S" \
    >&2 9>&-; then
    say "PostgreSQL from $PG_DATA_DIR is not ready on $PG_HOST:$PG_PORT: it exited, or took over ${PG_START_TIMEOUT_S} s"
    show_log
    if pg_running; then
        say "stopping it"
        "$PG_DEPLOY_DIR/stop.sh" >&2 9>&- || true
    fi
    exit 1
fi
if ! wait_ready 10; then
    say "PostgreSQL started from $PG_DATA_DIR but pg_isready does not see it on $PG_HOST:$PG_PORT; stopping it"
    show_log
    "$PG_DEPLOY_DIR/stop.sh" >&2 9>&- || true
    exit 1
fi
say "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') ready on $PG_HOST:$PG_PORT in $((SECONDS - started)) s"
say "data and log: $PG_DATA_DIR; stop with deploy/postgres/stop.sh (same PG_DATA_DIR)"
ready_and_print
