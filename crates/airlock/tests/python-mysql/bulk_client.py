"""MariaDB Connector/Python through the airlock MySQL gateway: bulk inserts.

Usage: bulk_client.py PORT USER TOKEN DATABASE STATEMENT ROWS_JSON

Connects over TLS (the gateway's self-signed certificate not checked) and
runs STATEMENT with `cursor.executemany` for the rows in ROWS_JSON (a JSON
list of lists). On MariaDB 10.2+ servers that announce bulk operations the
connector sends one COM_STMT_BULK_EXECUTE for all rows. Commits, and prints
one JSON document: whether the server announced bulk operations, and the
row count or the error's code and message.
"""

import json
import sys

import mariadb
from mariadb.constants import CAPABILITY


def main():
    port, user, token, database, statement, rows = sys.argv[1:7]
    connection = mariadb.connect(
        host="127.0.0.1",
        port=int(port),
        user=user,
        password=token,
        database=database,
        ssl=True,
        ssl_verify_cert=False,
        connect_timeout=10,
    )
    bulk = bool(
        connection.extended_server_capabilities & (CAPABILITY.BULK_OPERATIONS >> 32)
    )
    result = {"bulk": bulk}
    cursor = connection.cursor()
    try:
        cursor.executemany(statement, [tuple(row) for row in json.loads(rows)])
        result["rowcount"] = cursor.rowcount
        connection.commit()
    except mariadb.Error as error:
        result["error"] = error.errno
        result["message"] = error.msg
    cursor.close()
    connection.close()
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
