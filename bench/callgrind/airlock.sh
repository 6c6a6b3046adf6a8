#!/bin/bash
# Instructions per `pgbench -S` query spent by the gateway (all its
# threads), counted by callgrind: independent of the machine's load, so
# two builds or configurations compare exactly on a busy machine.
#   bash bench/callgrind/setup.sh            # once: role and pgbench tables
#   N=2000 C=2 bash bench/callgrind/airlock.sh pass bench/callgrind/pass.yaml
# Needs a PostgreSQL at 127.0.0.1:5432 where `psql -h 127.0.0.1 -U postgres`
# connects (setup.sh makes the role `prof` and its tables there), valgrind,
# pgbench, jq, curl, and `cargo build --release -p airlock`.
# User-space instructions only: system calls and wake-ups are not counted.
set -u
NAME=$1; CONFIG=$(realpath "$2"); N=${N:-4000}; C=${C:-4}
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${AIRLOCK_BIN:-$HERE/../../target/release/airlock}
OUT=${OUT:-/tmp/airlock-callgrind}; mkdir -p $OUT
D=$OUT/data-$NAME; rm -rf $D $OUT/cg-$NAME.*
export AIRLOCK_ADMIN_TOKEN=proftoken0123456789abcdef01234567 AIRLOCK_URL=http://127.0.0.1:28480
cd "$(dirname "$CONFIG")"
valgrind --tool=callgrind --callgrind-out-file=$OUT/cg-$NAME.%p $BIN serve --config $CONFIG --data-dir $D > $OUT/gw-$NAME.log 2>&1 &
GW=$!
for i in $(seq 1 240); do curl -sf http://127.0.0.1:28480/healthz >/dev/null && break; sleep 0.5; done
printf 'profpw' | $BIN credential set prof-cred --username prof --password-stdin >/dev/null
TOKEN=$($BIN token issue --identity agent-7 --kind agent --group agents --connection prof --ttl 30m --output json | jq -r .token)
export PGPASSWORD=$TOKEN PGSSLMODE=disable  # as PgBouncer (no TLS) and airlock-bench
pgbench -n -S -c $C -t 50 -h 127.0.0.1 -p 25432 -U agent-7 prof > /dev/null 2>&1
callgrind_control -z $GW >/dev/null
pgbench -n -S -c $C -t $((N / C)) -h 127.0.0.1 -p 25432 -U agent-7 prof > $OUT/pgb-$NAME.log 2>&1
callgrind_control -d $GW >/dev/null
sleep 1
kill $GW; wait $GW 2>/dev/null
# The dump after zeroing: the part file with the workload.
TOTAL=$(for f in $OUT/cg-$NAME.*; do grep -h "^summary:\|^totals:" $f | head -1 | awk '{print $2}'; done | sort -n | tail -1)
grep -h "transactions actually processed" $OUT/pgb-$NAME.log
echo "$NAME: total Ir $TOTAL, per query $((TOTAL / N))"
