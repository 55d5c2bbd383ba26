#!/usr/bin/env bash
# Clients against a live `sluice serve`: kcat (librdkafka's command-line client) and the
# Python confluent-kafka client on the Kafka port; psql and psycopg on the PostgreSQL
# port; over a fresh data directory, on free loopback ports.
#
#   bash tests/clients/run.sh [path/to/sluice]    (default: $CARGO_TARGET_DIR/debug/sluice)
#
# Builds nothing. Needs kcat, psql, and python3 with confluent_kafka and psycopg (and
# optionally sqlalchemy); .ci/run installs them.
# Every client call runs under `timeout`, the broker is always stopped on exit, and the
# last line is `clients: N passed, N failed`; the exit status is non-zero if any failed.
set -euo pipefail
cd "$(dirname "$0")/../.."

SLUICE="${1:-${CARGO_TARGET_DIR:-target}/debug/sluice}"
# Longest the broker may take to print its ready line, and to exit after SIGTERM.
READY_TIMEOUT_S=10
STOP_TIMEOUT_S=5
# Longest one kcat invocation may take; the whole Python suite gets PYTHON_TIMEOUT_S.
KCAT_TIMEOUT_S=20
PYTHON_TIMEOUT_S=90

if [[ ! -x "$SLUICE" ]]; then
    echo "error: no sluice binary at $SLUICE (build it with cargo build -p sluice)" >&2
    exit 2
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/sluice-clients.XXXXXX")"
DATA="$WORK/data"
BROKER_LOG="$WORK/broker.log"
BROKER_PID=""
PASSED=0
FAILED=0

cleanup() {
    if [[ -n "$BROKER_PID" ]] && kill -0 "$BROKER_PID" 2>/dev/null; then
        kill -TERM "$BROKER_PID" 2>/dev/null || true
        for _ in $(seq $((STOP_TIMEOUT_S * 10))); do
            kill -0 "$BROKER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# run_check NAME COMMAND...: runs the command in a subshell with errexit in force (which
# an `if` would switch off) and counts it as passed or failed.
run_check() {
    local name="$1" rc
    shift
    set +e
    ( set -e; "$@" )
    rc=$?
    set -e
    if [[ $rc -eq 0 ]]; then
        echo "ok    $name"
        PASSED=$((PASSED + 1))
    else
        echo "FAIL  $name (exit $rc)"
        FAILED=$((FAILED + 1))
    fi
}

# expect_same WHAT EXPECTED_FILE ACTUAL_FILE: exact comparison, with a diff on mismatch.
expect_same() {
    if ! diff -u "$2" "$3" >"$WORK/diff"; then
        echo "  $1 differs (--- expected, +++ got):"
        head -40 "$WORK/diff" | sed 's/^/  /'
        return 1
    fi
}

kcat_() {
    timeout "$KCAT_TIMEOUT_S" kcat -b "$ADDR" "$@"
}

now_ms() {
    date +%s%3N
}

# --- topics made with the CLI before the broker starts, so it must serve them from disk
CODECS=(none gzip snappy lz4 zstd)
"$SLUICE" topics create listed --partitions 3 --data-dir "$DATA" >/dev/null
for topic in "${CODECS[@]/#/codec-}" from-offset by-time; do
    "$SLUICE" topics create "$topic" --partitions 1 --data-dir "$DATA" >/dev/null
done

# --- start the broker; port 0 lets it pick a free port, which the ready line names
"$SLUICE" serve --data-dir "$DATA" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
    --pg-listen 127.0.0.1:0 >"$BROKER_LOG" 2>&1 &
BROKER_PID=$!
ADDR=""
for _ in $(seq $((READY_TIMEOUT_S * 10))); do
    ADDR="$(sed -n 's/^sluice broker ready on \([^ ]*\) .*/\1/p' "$BROKER_LOG")"
    [[ -n "$ADDR" ]] && break
    if ! kill -0 "$BROKER_PID" 2>/dev/null; then
        break
    fi
    sleep 0.1
done
if [[ -z "$ADDR" ]]; then
    echo "error: sluice serve printed no ready line within ${READY_TIMEOUT_S}s; its output:" >&2
    cat "$BROKER_LOG" >&2
    echo "clients: 0 passed, 1 failed"
    exit 1
fi
echo "== kcat against sluice serve on $ADDR"

check_metadata() {
    # Proves Metadata: the broker lists itself at the address clients dialled, and a topic
    # created before it started with its three partitions, each led by that broker.
    kcat_ -L >"$WORK/metadata"
    grep -Eq "^  broker [0-9]+ at $ADDR" "$WORK/metadata"
    grep -Fq 'topic "listed" with 3 partitions:' "$WORK/metadata"
    kcat_ -L -t listed >"$WORK/metadata-listed"
    [[ $(grep -c '^    partition [0-2], leader [0-9]*,' "$WORK/metadata-listed") -eq 3 ]]
}
run_check "kcat -L lists the broker and a created topic" check_metadata

# Keyed lines that exercise the separator: an empty value, a value holding the separator,
# non-ASCII text, and enough repetition for every codec to shrink the batch.
{
    echo 'empty:'
    echo 'colons:a:b:c'
    echo 'unicode:naïve café ☕'
    for i in $(seq 1 300); do
        echo "user-$((i % 17)):page view $i of the same repetitive payload"
    done
} >"$WORK/keyed"

check_codec() {
    # Proves Produce and Fetch of batches compressed with one codec: every keyed line comes
    # back byte for byte, in order, from offset 0 to the end of the partition. librdkafka
    # sends a batch uncompressed when compressing would not shrink it, so its debug log is
    # checked to show that every batch really went out with the codec. The lines must go
    # out together for that: with librdkafka's 5 ms linger, a loaded machine once let the
    # first two lines leave alone, uncompressed (91 bytes do not shrink). A 500 ms linger
    # (which kcat waits out once at the end) keeps them together.
    local codec="$1" sent_as="$1"
    [[ $codec != none ]] || sent_as=uncompressed
    kcat_ -P -t "codec-$codec" -K: -z "$codec" -X acks=all -X linger.ms=500 -d msg \
        <"$WORK/keyed" 2>"$WORK/produce-$codec.log"
    grep 'Produce MessageSet with' "$WORK/produce-$codec.log" >"$WORK/batches-$codec"
    if [[ ! -s "$WORK/batches-$codec" ]] || grep -vq ", $sent_as)\$" "$WORK/batches-$codec"; then
        echo "  kcat did not send every batch as $sent_as:"
        sed 's/^/  /' "$WORK/batches-$codec"
        return 1
    fi
    kcat_ -C -t "codec-$codec" -e -q -o beginning -f '%k:%s\n' >"$WORK/got-$codec"
    expect_same "codec-$codec" "$WORK/keyed" "$WORK/got-$codec"
}
for codec in "${CODECS[@]}"; do
    run_check "kcat -z $codec keyed produce, consume back exactly" check_codec "$codec"
done

check_from_offset() {
    # Proves a Fetch that starts mid-partition: -o 2 yields the third record onward.
    printf 'k0:v0\nk1:v1\nk2:v2\nk3:v3\nk4:v4\n' | kcat_ -P -t from-offset -K:
    kcat_ -C -t from-offset -e -q -o 2 -f '%o %k:%s\n' >"$WORK/got-offset"
    printf '2 k2:v2\n3 k3:v3\n4 k4:v4\n' >"$WORK/want-offset"
    expect_same "consume from offset 2" "$WORK/want-offset" "$WORK/got-offset"
}
run_check "kcat -o 2 starts at offset 2" check_from_offset

check_from_timestamp() {
    # Proves ListOffsets by timestamp as kcat uses it: -o s@MS starts at the first record
    # produced at or after MS, skipping the ones produced before.
    printf 'a:before-1\nb:before-2\n' | kcat_ -P -t by-time -K:
    sleep 0.05
    local since_ms
    since_ms="$(now_ms)"
    sleep 0.05
    printf 'c:after-1\nd:after-2\n' | kcat_ -P -t by-time -K:
    kcat_ -C -t by-time -e -q -o "s@$since_ms" -f '%o %k:%s\n' >"$WORK/got-time"
    printf '2 c:after-1\n3 d:after-2\n' >"$WORK/want-time"
    expect_same "consume from s@$since_ms" "$WORK/want-time" "$WORK/got-time"
}
run_check "kcat -o s@MS starts at the first record at or after MS" check_from_timestamp

echo "== confluent-kafka (Python) against sluice serve on $ADDR"
set +e
timeout "$PYTHON_TIMEOUT_S" python3 tests/clients/test_confluent.py --bootstrap "$ADDR" \
    2>&1 | tee "$WORK/python.log"
python_rc=${PIPESTATUS[0]}
set -e
summary_re='^confluent-kafka: passed=([0-9]+) failed=([0-9]+) skipped=([0-9]+)$'
summary="$(sed -En "s/$summary_re/\\1 \\2 \\3/p" "$WORK/python.log")"
if [[ -n "$summary" ]]; then
    read -r py_passed py_failed py_skipped <<<"$summary"
    PASSED=$((PASSED + py_passed))
    FAILED=$((FAILED + py_failed))
    [[ $py_skipped -eq 0 ]] || echo "confluent-kafka: $py_skipped skipped (reasons above)"
fi
if [[ -z "$summary" || ($python_rc -ne 0 && ${py_failed:-0} -eq 0) ]]; then
    # No summary, or a failing exit without failed tests: crashed, timed out, or no tests.
    echo "FAIL  confluent-kafka suite did not complete (exit $python_rc)"
    FAILED=$((FAILED + 1))
fi

PG_ADDR="$(sed -n 's/^sluice sql (PostgreSQL wire) on \([^ ]*\)$/\1/p' "$BROKER_LOG")"
echo "== psql and psycopg against sluice serve's PostgreSQL endpoint on $PG_ADDR"
psql_() {
    timeout "$KCAT_TIMEOUT_S" psql -X -q -A -t -v ON_ERROR_STOP=1 \
        -h "${PG_ADDR%:*}" -p "${PG_ADDR##*:}" -U sluice -d sluice "$@"
}
check_psql() {
    # A topic made by kcat above, declared as a raw table and counted; then a table made
    # and filled over the wire.
    psql_ -c "CREATE TABLE kcat_lines (value VARCHAR) WITH (topic = 'from-offset', format = 'raw')" >/dev/null
    [[ "$(psql_ -c "SELECT _key || '=' || value FROM kcat_lines ORDER BY _offset" | tr '\n' ' ')" == "k0=v0 k1=v1 k2=v2 k3=v3 k4=v4 " ]]
    psql_ -c "CREATE TABLE psql_t (id BIGINT, name VARCHAR) WITH (topic = 'psql-t', format = 'json')" >/dev/null
    psql_ -c "INSERT INTO psql_t VALUES (1, 'one'), (2, 'two')" >/dev/null
    [[ "$(psql_ -c "SELECT name FROM psql_t ORDER BY id" | tr '\n' ' ')" == "one two " ]]
    # An error is an error response with a SQLSTATE, and psql exits non-zero.
    if psql_ -c "SELECT missing FROM psql_t" 2>"$WORK/psql.err"; then
        return 1
    fi
    grep -q "ERROR" "$WORK/psql.err"
}
run_check "psql: raw and json tables, INSERT, errors" check_psql
check_psql_describe() {
    # psql's describe commands read the system catalogs with psql's own queries: \dt
    # lists the tables, \d psql_t names its columns with PostgreSQL's type names, \dn
    # the schema, \l the database.
    psql_ -c '\dt' >"$WORK/dt.out"
    grep -qx 'public|psql_t|table|sluice' "$WORK/dt.out"
    grep -qx 'public|kcat_lines|table|sluice' "$WORK/dt.out"
    psql_ -c '\d psql_t' >"$WORK/d.out"
    grep -q '^id|bigint|' "$WORK/d.out"
    grep -q '^name|character varying|' "$WORK/d.out"
    grep -q '^_offset|bigint|' "$WORK/d.out"
    [[ "$(psql_ -c '\dn')" == "public|sluice" ]]
    psql_ -c '\l' | grep -q '|sluice|UTF8|'
}
run_check "psql: \\dt, \\d table, \\dn, \\l" check_psql_describe
set +e
timeout "$PYTHON_TIMEOUT_S" python3 tests/clients/test_psycopg.py --pg "$PG_ADDR" \
    2>&1 | tee "$WORK/psycopg.log"
psycopg_rc=${PIPESTATUS[0]}
set -e
pg_summary="$(sed -En 's/^psycopg: passed=([0-9]+) failed=([0-9]+)$/\1 \2/p' "$WORK/psycopg.log")"
if [[ -n "$pg_summary" ]]; then
    read -r pg_passed pg_failed <<<"$pg_summary"
    PASSED=$((PASSED + pg_passed))
    FAILED=$((FAILED + pg_failed))
fi
if [[ -z "$pg_summary" || ($psycopg_rc -ne 0 && ${pg_failed:-0} -eq 0) ]]; then
    echo "FAIL  psycopg suite did not complete (exit $psycopg_rc)"
    FAILED=$((FAILED + 1))
fi

check_clean_stop() {
    # Proves SIGTERM shuts the broker down cleanly: it exits 0 within STOP_TIMEOUT_S and
    # says it stopped (the log was closed, not abandoned).
    kill -TERM "$BROKER_PID"
    local waited=0
    while kill -0 "$BROKER_PID" 2>/dev/null; do
        if [[ $waited -ge $((STOP_TIMEOUT_S * 10)) ]]; then
            echo "  still running ${STOP_TIMEOUT_S}s after SIGTERM"
            return 1
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    local rc=0
    wait "$BROKER_PID" || rc=$?
    if [[ $rc -ne 0 ]]; then
        echo "  exit code $rc after SIGTERM; its output:"
        sed 's/^/  /' "$BROKER_LOG"
        return 1
    fi
    grep -q '^sluice broker stopped$' "$BROKER_LOG"
}
# The check runs in a subshell, which cannot wait for the broker: run it here instead.
set +e
check_clean_stop
stop_rc=$?
set -e
# Reaped now, unless it ignored SIGTERM: then the exit trap still has to kill it.
kill -0 "$BROKER_PID" 2>/dev/null || BROKER_PID=""
if [[ $stop_rc -eq 0 ]]; then
    echo "ok    SIGTERM stops the broker with exit code 0"
    PASSED=$((PASSED + 1))
else
    echo "FAIL  SIGTERM stops the broker with exit code 0"
    FAILED=$((FAILED + 1))
fi

if [[ $FAILED -ne 0 ]]; then
    echo "broker output:"
    sed 's/^/  /' "$BROKER_LOG"
fi
echo "clients: $PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
