#!/bin/bash
# PgBouncer's instructions per `pgbench -S` query (session pooling), as
# airlock.sh counts the gateway's: N=2000 C=2 bash bench/callgrind/pgbouncer.sh
set -u
N=${N:-4000}; C=${C:-4}
D=${OUT:-/tmp/airlock-callgrind}/bouncer; rm -rf $D; mkdir -p $D; chown postgres $D
cat > $D/pgbouncer.ini <<INI
[databases]
prof = host=127.0.0.1 port=5432 dbname=prof user=prof password=profpw
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = 26432
auth_type = any
pool_mode = session
max_client_conn = 100
default_pool_size = 20
logfile = $D/pgbouncer.log
pidfile = $D/pgbouncer.pid
unix_socket_dir =
INI
chown postgres $D/pgbouncer.ini
runuser -u postgres -- valgrind --tool=callgrind --callgrind-out-file=$D/cg.%p /usr/sbin/pgbouncer $D/pgbouncer.ini > $D/out.log 2>&1 &
sleep 5
PID=$(pgrep -f "callgrind.*pgbouncer" | head -1)
export PGPASSWORD=x
pgbench -n -S -c $C -t 50 -h 127.0.0.1 -p 26432 -U prof prof > /dev/null 2>&1
callgrind_control -z $PID >/dev/null
pgbench -n -S -c $C -t $((N / C)) -h 127.0.0.1 -p 26432 -U prof prof > $D/pgb.log 2>&1
callgrind_control -d $PID >/dev/null
sleep 1; kill $PID; sleep 2
grep -h "transactions actually processed" $D/pgb.log
TOTAL=$(for f in $D/cg.*; do grep -h "^summary:\|^totals:" $f | head -1 | awk '{print $2}'; done | sort -n | tail -1)
echo "pgbouncer: total Ir $TOTAL, per query $((TOTAL / N))"
