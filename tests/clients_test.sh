#!/usr/bin/env bash
# clients_test.sh — runs each snippet of docs/clients/ as shipped, twice, against
# a live gateway (with an API key) and simulator: each must create an invoice,
# see it PAID (the simulator plays the buyer) and exit 0. Twice, because a
# hard-coded Idempotency-Key made the second run fail with 422.
set -euo pipefail
. "$SEQR_SRCDIR/tests/shtest.sh"

command -v php >/dev/null || sht_fail "php is missing (dev/setup installs php-cli)"
php -r 'exit(function_exists("curl_init") ? 0 : 1);' || sht_fail "PHP has no curl extension (dev/setup installs php-curl)"
command -v node >/dev/null || sht_fail "node is missing (dev/setup installs nodejs)"

sht_start "clients-test-key-0123456789"

# The buyer: pays every ISSUED invoice the simulator knows, until stopped.
(
  while :; do
    for ref in $(curl -s "$SHT_SIM/sim/invoices" | jq -r '.invoices[] | select(.status == "ISSUED") | .invoiceReference'); do
      curl -s -o /dev/null -X POST "$SHT_SIM/sim/invoices/$ref/pay"
    done
    sleep 0.2
  done
) &
SHT_PIDS+=($!)

run() { # name command...
  local name=$1 out; shift
  for attempt in 1 2; do
    if ! out=$(GATEWAY_URL=$SHT_GW API_KEY=$SHT_API_KEY ORDER_ID="$name-$attempt" timeout 60 "$@" 2>&1); then
      echo "$out" >&2
      sht_fail "$name (run $attempt) failed"
    fi
    echo "$out" | sed "s/^/  $name: /"
    grep -q "^Invoice is PAID$" <<<"$out" || sht_fail "$name (run $attempt) did not end with 'Invoice is PAID'"
  done
}

run php php "$SEQR_SRCDIR/docs/clients/create-invoice.php"
run python python3 "$SEQR_SRCDIR/docs/clients/create_invoice.py"
run node node "$SEQR_SRCDIR/docs/clients/create-invoice.mjs"

n=$(curl -s -H "Authorization: Bearer $SHT_API_KEY" "$SHT_GW/invoices?status=PAID" | jq '.invoices | length')
[ "$n" = 6 ] || sht_fail "expected 6 PAID invoices, the gateway has $n"
echo "PASS: 3 snippets x 2 runs, 6 invoices PAID"
