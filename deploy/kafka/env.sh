# Settings shared by fetch.sh, start.sh and stop.sh; each can be overridden from the environment.
# Sourced, not run.

KAFKA_DEPLOY_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KAFKA_REPO_ROOT=$(cd "$KAFKA_DEPLOY_DIR/../.." && pwd)

abspath() {
    case "$1" in
        /*) printf '%s\n' "$1" ;;
        *) printf '%s\n' "$PWD/$1" ;;
    esac
}

KAFKA_VERSION=${KAFKA_VERSION:-4.1.1}
KAFKA_HOST=127.0.0.1
KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}
KAFKA_CACHE_DIR=$(abspath "${KAFKA_CACHE_DIR:-$KAFKA_DEPLOY_DIR/.cache}")
KAFKA_LIBS_DIR=$KAFKA_CACHE_DIR/libs/$KAFKA_VERSION
KAFKA_DATA_DIR=$(abspath "${KAFKA_DATA_DIR:-$KAFKA_CACHE_DIR/data}")
KAFKA_PID_FILE=$KAFKA_DATA_DIR/kafka.pid
KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}
KAFKA_START_TIMEOUT_S=${KAFKA_START_TIMEOUT_S:-90}
KAFKA_STOP_TIMEOUT_S=${KAFKA_STOP_TIMEOUT_S:-30}

# True when $1 is the pid of a live (not zombie) broker JVM.
kafka_pid_alive() {
    local pid=$1 state
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
    [ "$state" != Z ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'kafka\.Kafka '
}

kafka_pid() {
    [ -f "$KAFKA_PID_FILE" ] && cat "$KAFKA_PID_FILE" || true
}

port_open() {
    (exec 3<>"/dev/tcp/$KAFKA_HOST/$1") 2>/dev/null
}
