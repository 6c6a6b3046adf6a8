"""PyMySQL through the airlock MySQL gateway, as an application uses it.

Usage: pymysql_client.py PORT USER TOKEN DATABASE STATEMENT...

Connects with PyMySQL's defaults (its charset utf8mb4, autocommit off, the
authentication plugin the server names) over TLS without checking the
gateway's self-signed certificate, runs each statement with the DB-API
(a statement may carry one parameter after a tab: `select … where id = %s<TAB>1`),
commits, and prints one JSON document: the server version it saw, and per
statement either its rows or the error's code and message.
"""

import json
import ssl
import sys

import pymysql


def main():
    port, user, token, database = sys.argv[1:5]
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    connection = pymysql.connect(
        host="127.0.0.1",
        port=int(port),
        user=user,
        password=token,
        database=database,
        ssl=context,
        connect_timeout=10,
    )
    results = []
    with connection.cursor() as cursor:
        for statement in sys.argv[5:]:
            text, _, parameter = statement.partition("\t")
            try:
                if parameter:
                    cursor.execute(text, (parameter,))
                else:
                    cursor.execute(text)
                rows = [list(row) for row in cursor.fetchall()]
                results.append({"rows": rows})
            except pymysql.MySQLError as error:
                code, message = error.args[0], error.args[1] if len(error.args) > 1 else ""
                results.append({"error": code, "message": message})
    connection.commit()
    cipher = connection._sock.cipher() if hasattr(connection._sock, "cipher") else None
    connection.close()
    print(
        json.dumps(
            {
                "server_version": connection.server_version,
                "tls": cipher is not None,
                "results": results,
            },
            default=str,
        )
    )


if __name__ == "__main__":
    main()
