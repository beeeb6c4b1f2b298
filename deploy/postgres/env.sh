# Settings shared by start.sh and stop.sh; each can be overridden from the environment. Sourced, not run.

PG_DEPLOY_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PG_REPO_ROOT=$(cd "$PG_DEPLOY_DIR/../.." && pwd)

abspath() {
    case "$1" in
        /*) printf '%s\n' "$1" ;;
        *) printf '%s\n' "$PWD/$1" ;;
    esac
}

PG_HOST=127.0.0.1
PG_PORT=${PG_PORT:-55432}
PG_DATABASE=${PG_DATABASE:-recovery}
PG_SUPERUSER=postgres
PG_DATA_DIR=$(abspath "${PG_DATA_DIR:-$PG_DEPLOY_DIR/.cache/data}")
PG_SOCKET_DIR=$(abspath "${PG_SOCKET_DIR:-$PG_DATA_DIR}")
PG_LOG_FILE=$PG_DATA_DIR/server.log
PG_START_TIMEOUT_S=${PG_START_TIMEOUT_S:-60}
PG_STOP_TIMEOUT_S=${PG_STOP_TIMEOUT_S:-60}
# Extra postgresql.conf lines ("name = value", newline-separated) that start.sh writes into DATA_DIR/start.conf.
PG_EXTRA_CONF=${PG_EXTRA_CONF:-}
# The system user the server runs as when these scripts run as root (PostgreSQL refuses to run as root).
PG_OS_USER=${PG_OS_USER:-postgres}

# The newest /usr/lib/postgresql/VERSION/bin holding pg_ctl (or PG_BIN_DIR); empty when none is installed.
pg_bin_dir() {
    if [ -n "${PG_BIN_DIR:-}" ]; then
        [ -x "$PG_BIN_DIR/pg_ctl" ] && echo "$PG_BIN_DIR"
        return 0
    fi
    local dir found=
    for dir in /usr/lib/postgresql/*/bin; do
        [ -x "$dir/pg_ctl" ] && found+="$dir"$'\n'
    done
    printf '%s' "$found" | sort -V | tail -n 1
}

# Run a command as the server's owner: PG_OS_USER when we are root, else ourselves. From / so that a working
# directory the owner cannot enter does not matter (every path here is absolute).
if [ "$(id -u)" -eq 0 ]; then
    PG_AS=(runuser -u "$PG_OS_USER" --)
else
    PG_AS=()
fi
as_pg() {
    (cd / && "${PG_AS[@]}" "$@")
}

pg_url() {
    printf 'postgresql://%s@%s:%s/%s\n' "$PG_SUPERUSER" "$PG_HOST" "$PG_PORT" "$PG_DATABASE"
}

# True when the server started from $PG_DATA_DIR is running (pg_ctl status reads DATA_DIR/postmaster.pid).
pg_running() {
    [ -f "$PG_DATA_DIR/postmaster.pid" ] && as_pg "$PG_BIN/pg_ctl" status -D "$PG_DATA_DIR" >/dev/null 2>&1
}

# The port in DATA_DIR/postmaster.pid (its 4th line), for a running server.
pg_running_port() {
    sed -n 4p "$PG_DATA_DIR/postmaster.pid" 2>/dev/null || true
}

# As root, let PG_OS_USER walk down to $1: grant search (x, not read) on each parent it cannot enter.
# pytest's temporary folders, for one, are 0700 root.
pg_grant_path() {
    [ "$(id -u)" -eq 0 ] || return 0
    local dir=/ part rest=${1#/}
    while [ -n "$rest" ]; do
        part=${rest%%/*}
        [ "$part" = "$rest" ] && rest= || rest=${rest#*/}
        dir=${dir%/}/$part
        [ -d "$dir" ] || return 0
        if ! runuser -u "$PG_OS_USER" -- test -x "$dir" 2>/dev/null; then
            echo "$(basename "$0"): granting o+x on $dir so that $PG_OS_USER can reach $1" >&2
            chmod o+x "$dir"
        fi
    done
}

port_open() {
    (exec 3<>"/dev/tcp/$PG_HOST/$1") 2>/dev/null
}
