-- Run once by the postgres image on an empty data directory (docker-entrypoint-initdb.d).
-- Each service keeps its tables in its own schema (ledger, ingest, subscription, notification) and creates the
-- schema and runs its migrations at boot; only the databases are made here.
SELECT 'CREATE DATABASE tally' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'tally')\gexec
SELECT 'CREATE DATABASE tally_test' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'tally_test')\gexec
