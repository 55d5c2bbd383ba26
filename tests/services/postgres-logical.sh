#!/usr/bin/env bash
# Makes the local PostgreSQL ready for change data capture (the postgres-cdc source and its
# tests): wal_level=logical, which takes a server restart. Idempotent; used by .ci/run.
set -euo pipefail
PSQL=(psql -h "${PGHOST:-127.0.0.1}" -p "${PGPORT:-5432}" -U "${PGUSER:-postgres}" -d "${PGDATABASE:-test}" -Atq)
level=$("${PSQL[@]}" -c 'SHOW wal_level')
if [ "$level" = logical ]; then
    echo "postgres: wal_level is already logical"
    exit 0
fi
echo "postgres: wal_level is $level; setting logical and restarting"
"${PSQL[@]}" -c 'ALTER SYSTEM SET wal_level = logical'
version=$(ls /etc/postgresql | sort -V | tail -1)
pg_ctlcluster --skip-systemctl-redirect "$version" main restart
for _ in $(seq 1 60); do
    if "${PSQL[@]}" -c 'SELECT 1' >/dev/null 2>&1; then break; fi
    sleep 0.5
done
level=$("${PSQL[@]}" -c 'SHOW wal_level')
[ "$level" = logical ] || { echo "postgres: wal_level is still $level" >&2; exit 1; }
echo "postgres: wal_level is logical"
