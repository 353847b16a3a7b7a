# shtest.sh — sourced by the shell-script tests: starts the real simulator and
# the real daemon (from the build, as AM_TESTS_ENVIRONMENT names them) on free
# loopback ports with a throw-away config and SQLite file, and stops both when
# the test exits. Sets SHT_DIR, SHT_GW (gateway URL), SHT_SIM (simulator URL),
# SHT_API_KEY. A test fails with `sht_fail message`; skips with `sht_skip why`.

: "${SEQR_GATEWAY_BIN:?run through make check (SEQR_GATEWAY_BIN unset)}"
: "${SEQR_SIM_BIN:?run through make check (SEQR_SIM_BIN unset)}"
: "${SEQR_SRCDIR:?run through make check (SEQR_SRCDIR unset)}"

sht_fail() { echo "FAIL: $*" >&2; exit 1; }
sht_skip() { echo "SKIP: $*" >&2; exit 77; }

sht_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# sht_wait_url URL SECONDS — true once URL answers (any HTTP status).
sht_wait_url() {
  local deadline=$((SECONDS + $2))
  while [ $SECONDS -lt "$deadline" ]; do
    curl -s -o /dev/null "$1" && return 0
    sleep 0.1
  done
  return 1
}

SHT_PIDS=()
# sht_cleanup [exit status] — stops the daemons; removes SHT_DIR when the
# test passed, keeps it (and says where) when it failed.
sht_cleanup() {
  local rc=${1:-$?} p
  for p in "${SHT_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${SHT_DIR:-}" ] || return 0
  if [ "$rc" -eq 0 ]; then
    rm -rf "$SHT_DIR"
  else
    echo "the failed test's files are kept in $SHT_DIR" >&2
  fi
}
trap sht_cleanup EXIT

# sht_start [api_key] — simulator + gateway; an empty api_key means none.
sht_start() {
  SHT_API_KEY=${1-}
  SHT_DIR=$(mktemp -d "${TMPDIR:-/tmp}/seqr-shtest.XXXXXX")
  local sim_port gw_port
  sim_port=$(sht_free_port)
  gw_port=$(sht_free_port)
  cat > "$SHT_DIR/gw.conf" <<CONF
[http]
listen = 127.0.0.1
port = $gw_port
${SHT_API_KEY:+api_key = $SHT_API_KEY}

[seqr]
url = http://127.0.0.1:$sim_port/soap
terminal_id = seqr-sim-terminal
password = terminal-password
client_id = Company Name
timeout_ms = 5000

[reseller]
id = seqr-sim-reseller
user_id = 9900
password = reseller-password

[store]
path = $SHT_DIR/gw.db

[poller]
interval_ms = 200
invoice_ttl_s = 900
auto_receipt = true
CONF
  chmod 600 "$SHT_DIR/gw.conf"
  "$SEQR_SIM_BIN" --port "$sim_port" >"$SHT_DIR/sim.log" 2>&1 &
  SHT_PIDS+=($!)
  SHT_SIM=http://127.0.0.1:$sim_port
  sht_wait_url "$SHT_SIM/sim/requests" 20 || { cat "$SHT_DIR/sim.log" >&2; sht_fail "seqr-sim did not start"; }
  "$SEQR_GATEWAY_BIN" --config "$SHT_DIR/gw.conf" >"$SHT_DIR/gw.log" 2>&1 &
  SHT_PIDS+=($!)
  SHT_GW=http://127.0.0.1:$gw_port
  sht_wait_url "$SHT_GW/healthz" 20 || { cat "$SHT_DIR/gw.log" >&2; sht_fail "seqr-gateway did not start"; }
}
