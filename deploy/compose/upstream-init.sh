#!/bin/sh
# The example upstream's application role and table, created once by the
# postgres image on first start; the role's password comes from
# UPSTREAM_APP_PASSWORD (store the same one in airlock's vault:
# airlock credential set app-pg --username app --password-stdin).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname app \
  -v app_password="$UPSTREAM_APP_PASSWORD" <<'SQL'
CREATE ROLE app LOGIN PASSWORD :'app_password';
CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 10) g;
GRANT SELECT, INSERT, UPDATE, DELETE ON items TO app;
SQL
