#!/usr/bin/env bash
# Download the Kafka broker jars from Maven Central into .cache/libs/$KAFKA_VERSION, once.
# Prints that folder on stdout; progress goes to stderr, and only when it downloads.
set -euo pipefail
# shellcheck source=env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

if [ -f "$KAFKA_LIBS_DIR/.complete" ]; then
    echo "$KAFKA_LIBS_DIR"
    exit 0
fi

command -v mvn >/dev/null || { echo "fetch.sh: mvn not found (apt-get install maven)" >&2; exit 1; }
command -v java >/dev/null || { echo "fetch.sh: java not found (Java 17+ is needed)" >&2; exit 1; }

mkdir -p "$KAFKA_CACHE_DIR/libs"
# Two fetches at once (two shells, two test sessions) take turns; the second finds the jars there.
exec 9>"$KAFKA_CACHE_DIR/libs/.lock"
flock 9
if [ -f "$KAFKA_LIBS_DIR/.complete" ]; then
    echo "$KAFKA_LIBS_DIR"
    exit 0
fi

tmp=$(mktemp -d "$KAFKA_CACHE_DIR/libs/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "fetch.sh: downloading Kafka $KAFKA_VERSION jars (Maven Central) into $KAFKA_LIBS_DIR" >&2
started=$SECONDS
log="$KAFKA_CACHE_DIR/libs/fetch-$KAFKA_VERSION.log"
if ! mvn -q -B -f "$KAFKA_DEPLOY_DIR/pom.xml" dependency:copy-dependencies \
    -Dkafka.version="$KAFKA_VERSION" -Dlibs.dir="$tmp" >"$log" 2>&1; then
    echo "fetch.sh: mvn failed (is Kafka $KAFKA_VERSION on Maven Central?); its output, from $log:" >&2
    cat "$log" >&2
    exit 1
fi
if [ ! -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]; then
    echo "fetch.sh: mvn finished but kafka_2.13-$KAFKA_VERSION.jar is not in $tmp" >&2
    exit 1
fi
touch "$tmp/.complete"
rm -rf "$KAFKA_LIBS_DIR"
mv "$tmp" "$KAFKA_LIBS_DIR"
trap - EXIT
echo "fetch.sh: $(ls "$KAFKA_LIBS_DIR" | wc -l) jars, $(du -sh "$KAFKA_LIBS_DIR" | cut -f1), in $((SECONDS - started)) s" >&2
echo "$KAFKA_LIBS_DIR"
