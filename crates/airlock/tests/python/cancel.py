"""Cancel requests through a real libpq (psycopg 3's binary wheel).

    python3 cancel.py next DSN ROUNDS   # a cancel never hits the next statement
    python3 cancel.py tls DSN           # cancel_safe() over TLS

Prints one JSON object on stdout: what happened, for the test to compare
with the same run against PostgreSQL directly.
"""

import json
import sys
import threading
import time

import psycopg
from psycopg import errors


def next_statement(dsn, rounds):
    """Each round cancels once and then runs the next statement at once:
    odd rounds cancel a statement that already finished (the cancel finds
    the session idle: PostgreSQL ignores it), even rounds one that is
    running (it must be cancelled). The statement after the cancel returned
    must always succeed."""
    result = {"rounds": rounds, "late_cancels": 0, "cancelled": 0,
              "not_cancelled": [], "next_failed": []}
    with psycopg.connect(dsn, autocommit=True) as conn, \
            psycopg.connect(dsn, autocommit=True) as monitor:
        conn.execute("select 1")

        def cancel_once_running():
            # Cancel only once the server runs the statement: a timer alone
            # fires too early on a loaded machine (the cancel then finds the
            # session idle and is rightly ignored).
            deadline = time.monotonic() + 4
            while time.monotonic() < deadline:
                running = monitor.execute(
                    "select count(*) from pg_stat_activity"
                    " where state = 'active' and query = 'select pg_sleep(5)'"
                ).fetchone()[0]
                if running:
                    break
                time.sleep(0.005)
            conn.cancel()

        for i in range(rounds):
            if i % 2:
                conn.execute("select 1").fetchall()
                conn.cancel()  # PQcancel: returns once the server closed
                result["late_cancels"] += 1
            else:
                canceller = threading.Thread(target=cancel_once_running)
                canceller.start()
                try:
                    conn.execute("select pg_sleep(5)")
                    result["not_cancelled"].append(i)
                except errors.QueryCanceled:
                    result["cancelled"] += 1
                canceller.join()
            try:
                # Long enough for a late-delivered cancel to land in it.
                conn.execute("select pg_sleep(0.02), 1").fetchall()
            except psycopg.Error as error:
                result["next_failed"].append([i, type(error).__name__, str(error).strip()])
    print(json.dumps(result))


def over_tls(dsn):
    """cancel_safe() (libpq's PQcancelBlocking, encrypted as the connection
    is) during a long statement: the statement is cancelled and the cancel
    itself reports no error."""
    result = {"ssl": None, "cancel_error": None, "statement": None, "after": None}
    with psycopg.connect(dsn, autocommit=True) as conn:
        result["ssl"] = conn.pgconn.ssl_in_use
        errors_seen = []

        def cancel():
            try:
                conn.cancel_safe(timeout=10)
            except Exception as error:  # what libpq said about the cancel
                errors_seen.append(f"{type(error).__name__}: {str(error).strip()}")

        canceller = threading.Timer(0.3, cancel)
        canceller.start()
        started = time.monotonic()
        try:
            conn.execute("select pg_sleep(20)")
            result["statement"] = "completed"
        except errors.QueryCanceled:
            result["statement"] = "cancelled"
        except psycopg.Error as error:
            result["statement"] = f"{type(error).__name__}: {str(error).strip()}"
        result["seconds"] = round(time.monotonic() - started, 1)
        canceller.join()
        result["cancel_error"] = errors_seen[0] if errors_seen else None
        result["after"] = conn.execute("select 42").fetchone()[0]
    print(json.dumps(result))


if __name__ == "__main__":
    mode, dsn = sys.argv[1], sys.argv[2]
    if mode == "next":
        next_statement(dsn, int(sys.argv[3]))
    elif mode == "tls":
        over_tls(dsn)
    else:
        sys.exit(f"unknown mode {mode}")
