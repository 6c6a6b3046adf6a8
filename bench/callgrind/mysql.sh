#!/bin/bash
# Instructions per sysbench `oltp_point_select` query spent by the gateway
# (all its threads) on the MySQL path, counted by callgrind, as airlock.sh
# counts the PostgreSQL path: independent of the machine's load.
#   N=2000 C=2 bash bench/callgrind/mysql.sh full     # policy + recording + masking
#   N=2000 C=2 bash bench/callgrind/mysql.sh pass     # allow-all, no recording
# Starts its own throwaway MariaDB (mariadb-install-db + mariadbd on a free
# port under $OUT; no general log), prepares sysbench's tables directly,
# then runs the gateway under valgrind. Needs valgrind, sysbench, jq, curl,
# mariadb-server and `CARGO_PROFILE_RELEASE_DEBUG=1 cargo build --release
# -p airlock` (symbols for callgrind_annotate). sysbench logs in with
# mysql_clear_password over plain TCP on loopback, as airlock-bench does.
# Then: callgrind_annotate --inclusive=yes $OUT/cg-NAME.<pid>.1 | head -80 (the dump after zeroing)
set -u
NAME=$1; N=${N:-4000}; C=${C:-2}; ROWS=${ROWS:-1000}
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${AIRLOCK_BIN:-$HERE/../../target/release/airlock}
OUT=${OUT:-/tmp/airlock-callgrind-mysql}; mkdir -p $OUT; chmod 755 $OUT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
DBPORT=$(free_port); ADMIN=$(free_port); GWPORT=$(free_port)
M=$OUT/mariadb-$NAME; rm -rf $M; mkdir -p $M/data $M/tmp
USER_ARG=""; if [ "$(id -u)" = 0 ]; then chown -R mysql:mysql $M; USER_ARG=--user=mysql; fi
mariadb-install-db --no-defaults --datadir=$M/data --tmpdir=$M/tmp --auth-root-authentication-method=socket \
  --skip-test-db --skip-name-resolve $USER_ARG > $M/install.log 2>&1 || { cat $M/install.log; exit 1; }
mariadbd --no-defaults --datadir=$M/data --tmpdir=$M/tmp --port=$DBPORT --bind-address=127.0.0.1 \
  --socket=$M/sock --pid-file=$M/pid --skip-name-resolve --innodb-buffer-pool-size=64M \
  --innodb-flush-log-at-trx-commit=0 --skip-log-bin $USER_ARG > $M/server.log 2>&1 &
DBPID=$!
for i in $(seq 1 120); do mariadb --no-defaults --socket=$M/sock -uroot -e 'select 1' >/dev/null 2>&1 && break; sleep 0.5; done
mariadb --no-defaults --socket=$M/sock -uroot -e "create database appdb; create user app@'127.0.0.1' identified by 'apppw'; grant all on appdb.* to app@'127.0.0.1'"
SB="sysbench oltp_point_select --db-driver=mysql --mysql-host=127.0.0.1 --tables=1 --table-size=$ROWS --mysql-ssl=off"
$SB --mysql-port=$DBPORT --mysql-user=app --mysql-password=apppw --mysql-db=appdb prepare > $M/prepare.log 2>&1 || { cat $M/prepare.log; exit 1; }

D=$OUT/data-$NAME; rm -rf $D $OUT/cg-$NAME.*
if [ "$NAME" = pass ]; then
  POLICY='version: 1\ndefault: allow\nrules: []\n'; RECORDING='recording:\n  enabled: false\n'
else
  POLICY='version: 1\ndefault: deny\nrules:\n  - name: reads\n    match: {access: read}\n    action: allow\n  - name: transactions\n    match: {operations: [transaction]}\n    action: allow\n  - name: mask-pii\n    match: {}\n    mask:\n      detectors: [email, card, iban, ssn, phone, secret]\n      style: partial\n'
  RECORDING='recording:\n  sync: writes\n'
fi
printf "$POLICY" > $OUT/policy-$NAME.yaml
printf "listen:\n  admin: 127.0.0.1:$ADMIN\n  mysql: 127.0.0.1:$GWPORT\nstore: sqlite\npolicy: $OUT/policy-$NAME.yaml\nconnections:\n  - name: prof\n    protocol: mysql\n    address: 127.0.0.1:$DBPORT\n    database: appdb\n    credential: prof-cred\nlimits:\n  max_sessions_per_identity: 1000\n  max_sessions_per_connection: 1000\n$RECORDING" > $OUT/config-$NAME.yaml
export AIRLOCK_ADMIN_TOKEN=proftoken0123456789abcdef01234567 AIRLOCK_URL=http://127.0.0.1:$ADMIN
valgrind --tool=callgrind --callgrind-out-file=$OUT/cg-$NAME.%p $BIN serve --config $OUT/config-$NAME.yaml --data-dir $D > $OUT/gw-$NAME.log 2>&1 &
GW=$!
for i in $(seq 1 240); do curl -sf http://127.0.0.1:$ADMIN/healthz >/dev/null && break; sleep 0.5; done
printf 'apppw' | $BIN credential set prof-cred --username app --password-stdin >/dev/null
TOKEN=$($BIN token issue --identity agent-7 --kind agent --group agents --connection prof --ttl 30m --output json | jq -r .token)
export LIBMYSQL_ENABLE_CLEARTEXT_PLUGIN=1
GWSB="$SB --mysql-port=$GWPORT --mysql-user=agent-7 --mysql-password=$TOKEN --mysql-db=prof --time=0"
$GWSB --threads=$C --events=200 run > /dev/null 2>&1
callgrind_control -z $GW >/dev/null 2>&1
$GWSB --threads=$C --events=$N run > $OUT/sb-$NAME.log 2>&1
callgrind_control -d $GW >/dev/null 2>&1
sleep 1
kill $GW; wait $GW 2>/dev/null
kill $DBPID; wait $DBPID 2>/dev/null
TOTAL=$(for f in $OUT/cg-$NAME.*; do grep -h "^summary:\|^totals:" $f | head -1 | awk '{print $2}'; done | sort -n | tail -1)
grep -h "queries:\|errors:" $OUT/sb-$NAME.log | tr -s ' '
echo "$NAME: total Ir $TOTAL, per query $((TOTAL / N))"
