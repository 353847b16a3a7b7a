#!/usr/bin/env bash
# pgserver.sh — a throwaway PostgreSQL server for the tests. Sourced:
#   . tests/pgserver.sh; pgs_start   (sets PGS_URL, exits 77 when no server can run)
# The cluster lives in a temporary directory owned by an unprivileged user
# (tests run as root in CI, and postgres refuses to run as root), listens on
# a Unix socket in that directory only (no port to collide with), trusts
# local connections, and is stopped and removed on exit (pgs_stop).
# $PGS_CTL runs its pg_ctl (stop, start, restart) for outage tests.
# $PGS_SERVER_OPTS, when set, adds server options (-c name=value ...), for
# benches only (bench/pg --statements loads pg_stat_statements with it).
PGS_DIR=
PGS_RUN=()

pgs_skip() { echo "SKIP: $*" >&2; exit 77; }

pgs_start() {
  local bindir
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$bindir" ] && [ -x "$bindir/initdb" ] ||
    pgs_skip "PostgreSQL server binaries not found (dev/setup installs the Debian package postgresql)"
  PGS_DIR=$(mktemp -d /tmp/seqr-pg.XXXXXX)
  chmod 755 "$PGS_DIR"
  if [ "$(id -u)" -eq 0 ]; then
    chown nobody "$PGS_DIR" || pgs_skip "cannot give $PGS_DIR to the user nobody"
    PGS_RUN=(runuser -u nobody --)
  fi
  "${PGS_RUN[@]}" "$bindir/initdb" -D "$PGS_DIR/data" -U seqr --auth=trust -E UTF8 \
    --no-sync >"$PGS_DIR/initdb.log" 2>&1 ||
    { cat "$PGS_DIR/initdb.log" >&2; pgs_stop; pgs_skip "initdb failed"; }
  "${PGS_RUN[@]}" "$bindir/pg_ctl" -D "$PGS_DIR/data" -l "$PGS_DIR/server.log" -w -t 60 \
    -o "-c listen_addresses='' -c unix_socket_directories='$PGS_DIR' -c max_connections=200 ${PGS_SERVER_OPTS:-}" \
    start >/dev/null || { cat "$PGS_DIR/server.log" >&2; pgs_stop; echo "FAIL: pg_ctl start" >&2; exit 1; }
  PGS_BINDIR=$bindir
  "${PGS_RUN[@]}" "$bindir/createdb" -h "$PGS_DIR" -U seqr seqr ||
    { pgs_stop; echo "FAIL: createdb" >&2; exit 1; }
  PGS_URL="postgresql://seqr@/seqr?host=$PGS_DIR"
  export PGS_URL
  # $PGS_CTL stop|start|restart [pg_ctl options]: the server's pg_ctl, for
  # tests that take the database away under a running gateway.
  PGS_CTL=$PGS_DIR/ctl
  {
    echo '#!/usr/bin/env bash'
    printf 'exec '
    printf '%q ' "${PGS_RUN[@]}" "$bindir/pg_ctl" -D "$PGS_DIR/data" -l "$PGS_DIR/server.log" \
      -w -t 60 -o "-c listen_addresses='' -c unix_socket_directories='$PGS_DIR' -c max_connections=200 ${PGS_SERVER_OPTS:-}"
    echo '"$@" >/dev/null'
  } >"$PGS_CTL"
  chmod 755 "$PGS_CTL"
  export PGS_CTL
}

# A fresh, empty database named $1 on the running server; prints its URL.
pgs_newdb() {
  "${PGS_RUN[@]}" "$PGS_BINDIR/createdb" -h "$PGS_DIR" -U seqr "$1" >&2 || return 1
  echo "postgresql://seqr@/$1?host=$PGS_DIR"
}

pgs_stop() {
  if [ -n "$PGS_DIR" ] && [ -d "$PGS_DIR/data" ] && [ -n "${PGS_BINDIR:-}" ]; then
    "${PGS_RUN[@]}" "$PGS_BINDIR/pg_ctl" -D "$PGS_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  [ -n "$PGS_DIR" ] && rm -rf "$PGS_DIR"
  PGS_DIR=
}
