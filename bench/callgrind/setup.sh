#!/bin/bash
# One-time: role, db, pgbench tables on the machine's PostgreSQL (trust auth).
set -e
psql -h 127.0.0.1 -U postgres -c "drop database if exists prof" -c "drop role if exists prof" -c "create role prof login password 'profpw'" -c "create database prof owner prof" >/dev/null
PGPASSWORD=profpw pgbench -i -q -s 1 -h 127.0.0.1 -U prof prof
