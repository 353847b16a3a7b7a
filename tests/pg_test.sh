#!/usr/bin/env bash
# pg_test.sh — runs the store suite and the daemon's suites against a real
# PostgreSQL server (a throwaway one, tests/pgserver.sh), as the rest of the
# suite runs them against SQLite: they read the database to use from
# SEQR_TEST_PG_URL, and
# check_pgoutage restarts the server through $PGS_CTL.
# Skipped (77) only where no PostgreSQL server can be run.
set -euo pipefail
. "$SEQR_SRCDIR/tests/pgserver.sh"
trap pgs_stop EXIT
pgs_start
SEQR_TEST_PG_URL=$PGS_URL ./tests/check_store
SEQR_TEST_PG_URL=$PGS_URL ./tests/check_gateway
SEQR_TEST_PG_URL=$PGS_URL ./tests/check_service
SEQR_TEST_PG_URL=$PGS_URL ./tests/check_failover
SEQR_TEST_PG_URL=$PGS_URL ./tests/check_pgoutage
SEQR_TEST_PG_URL=$PGS_URL ./tests/check_pgcopy
SEQR_TEST_PG_URL=$PGS_URL ./tests/check_webhooks
SEQR_TEST_PG_URL=$PGS_URL ./tests/check_checkout
