#!/usr/bin/env bash
# checkout_test.sh — the buyer's payment page (GET /pay/{token}) in a real
# browser: Debian's chromium, driven by puppeteer-core (pinned in
# tests/checkout/package-lock.json, installed by dev/setup; no browser is
# downloaded). tests/checkout/checkout.mjs pays, cancels and lets an invoice
# expire at the simulator and watches the page follow; screenshots at 375 and
# 1280 px go to build/tests/checkout-screens/ for a person to look at.
set -euo pipefail
. "$SEQR_SRCDIR/tests/shtest.sh"

command -v node >/dev/null || sht_fail "node is missing (dev/setup installs nodejs)"
command -v zbarimg >/dev/null || sht_fail "zbarimg is missing (dev/setup installs zbar-tools)"
CHROMIUM=${CHROMIUM:-$(command -v chromium || true)}
[ -n "$CHROMIUM" ] || sht_fail "chromium is missing (dev/setup installs it)"
export CHROMIUM

sht_start "checkout-test-key-0123456789"

tools=$SEQR_SRCDIR/tests/checkout
if [ ! -f "$tools/node_modules/.package-lock.json" ]; then
  command -v npm >/dev/null || sht_skip "npm is missing and tests/checkout has no node_modules (run dev/setup)"
  tools=$SHT_DIR/tools
  mkdir -p "$tools"
  cp "$SEQR_SRCDIR/tests/checkout/package.json" "$SEQR_SRCDIR/tests/checkout/package-lock.json" "$tools/"
  (cd "$tools" && npm ci --no-audit --no-fund --loglevel=error) >"$SHT_DIR/npm.log" 2>&1 || {
    cat "$SHT_DIR/npm.log" >&2
    sht_skip "the npm registry could not be reached to install tests/checkout's tools"
  }
fi
# The script imports puppeteer-core from the node_modules beside it.
[ "$tools" = "$SEQR_SRCDIR/tests/checkout" ] || cp "$SEQR_SRCDIR/tests/checkout/checkout.mjs" "$tools/"
screens=${CHECKOUT_SCREENS:-$PWD/tests/checkout-screens}
mkdir -p "$screens"

echo "== paid, canceled, phone and desktop, wrong tokens"
node "$tools/checkout.mjs" main "$SHT_GW" "$SHT_SIM" "$SHT_API_KEY" "$screens" ||
  sht_fail "the payment page did not behave (see above)"

echo "== dot segments do not leave /pay/"
code=$(curl -s --path-as-is -o "$SHT_DIR/dots" -w '%{http_code}' "$SHT_GW/pay/assets/../../invoices")
{ [ "$code" = 404 ] || [ "$code" = 401 ]; } && ! grep -q invoiceReference "$SHT_DIR/dots" ||
  sht_fail "/pay/assets/../../invoices answered $code: $(cat "$SHT_DIR/dots")"

echo "== expiry (invoice_ttl_s = 10 by a reload)"
sed -i 's/^invoice_ttl_s = .*/invoice_ttl_s = 10/' "$SHT_DIR/gw.conf"
kill -HUP "${SHT_PIDS[1]}"
deadline=$((SECONDS + 20))
until grep -q "reload: applied" "$SHT_DIR/gw.log"; do
  [ $SECONDS -lt $deadline ] || { cat "$SHT_DIR/gw.log" >&2; sht_fail "the gateway did not reload"; }
  sleep 0.1
done
node "$tools/checkout.mjs" expiry "$SHT_GW" "$SHT_SIM" "$SHT_API_KEY" "$screens" ||
  sht_fail "the payment page did not show the expiry"

if grep -E "GET /pay/([0-9A-Za-z_-]+\.)?[0-9a-f]{32}" "$SHT_DIR/gw.log"; then
  sht_fail "a pay token reached the log"
fi
echo "PASS: the payment page in chromium; screenshots in $screens"
