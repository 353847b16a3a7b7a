#!/usr/bin/env bash
# readme_test.sh — a developer following README.md step by step, in a copy of
# the source tree: `./configure` in the checkout (as "Install as a service"
# does), then `./dev/run` (which must still build and start), then the quick
# start's commands exactly as written (only the ports moved to free ones),
# then `make install` into a DESTDIR (twice: the config in use must survive),
# then SIGTERM to dev/run, which must stop the gateway and the simulator.
set -euo pipefail
. "$SEQR_SRCDIR/tests/shtest.sh"
command -v jq >/dev/null || sht_fail "jq is missing (dev/setup installs it)"

SHT_DIR=$(mktemp -d "${TMPDIR:-/tmp}/seqr-readme.XXXXXX")
tree=$SHT_DIR/seqr-gateway
mkdir -p "$tree"
# Whatever dev/run left behind (the defect this test looks for) is stopped by
# the test: the daemons built in this test's own tree, and nothing else.
readme_cleanup() {
  local rc=$? p
  for p in $(pgrep -f "^$tree/src/seqr-" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
  sht_cleanup "$rc"
}
trap readme_cleanup EXIT
# The source files as a checkout has them (no build products, no node_modules).
if git -C "$SEQR_SRCDIR" rev-parse --git-dir >/dev/null 2>&1; then
  (cd "$SEQR_SRCDIR" && git ls-files -co --exclude-standard -z | xargs -0 tar cf - 2>/dev/null) | tar xf - -C "$tree"
else
  (cd "$SEQR_SRCDIR" && tar cf - --exclude='./build*' --exclude=./var --exclude=node_modules \
     --exclude=config.status --exclude=config.log --exclude=Makefile --exclude=autom4te.cache .) | tar xf - -C "$tree"
fi
# Keep the pinned npm tools out of the way: dev/setup would reinstall them.
[ -d "$SEQR_SRCDIR/tests/openapi/node_modules" ] && ln -s "$SEQR_SRCDIR/tests/openapi/node_modules" "$tree/tests/openapi/node_modules"

echo "== README 'Install as a service': autoreconf -fi && ./configure (in the checkout)"
(cd "$tree" && autoreconf -fi >/dev/null 2>&1 && ./configure -q --prefix=/usr --sysconfdir=/etc) ||
  sht_fail "./configure in the checkout failed"

echo "== ./dev/run (builds in place; this takes a while)"
gw_port=$(sht_free_port)
sim_port=$(sht_free_port)
(cd "$tree" && exec env GATEWAY_PORT=$gw_port SIM_PORT=$sim_port ./dev/run) >"$SHT_DIR/dev-run.log" 2>&1 &
run_pid=$!
SHT_PIDS+=($run_pid)
deadline=$((SECONDS + 900))
until curl -s -o /dev/null "http://127.0.0.1:$gw_port/healthz"; do
  kill -0 $run_pid 2>/dev/null || { cat "$SHT_DIR/dev-run.log" >&2; sht_fail "dev/run exited before the gateway answered"; }
  [ $SECONDS -lt $deadline ] || { cat "$SHT_DIR/dev-run.log" >&2; sht_fail "dev/run did not start the gateway"; }
  sleep 0.5
done
# dev/run prints its "Try:" text once both run.
until grep -q "Ctrl-C stops both" "$SHT_DIR/dev-run.log"; do
  kill -0 $run_pid 2>/dev/null || { cat "$SHT_DIR/dev-run.log" >&2; sht_fail "dev/run exited"; }
  sleep 0.2
done

echo "== the quick start, as written"
awk '/^## Quick start/ {q = 1} q && /^```sh$/ {b = 1; next} b && /^```$/ {exit} b {print}' \
  "$SEQR_SRCDIR/README.md" > "$SHT_DIR/quickstart.sh"
[ -s "$SHT_DIR/quickstart.sh" ] || sht_fail "no quick start block in README.md"
sed -i -e "s/localhost:8080/localhost:$gw_port/g" -e "s/localhost:9090/localhost:$sim_port/g" "$SHT_DIR/quickstart.sh"
out=$(cd "$SHT_DIR" && bash -euo pipefail "$SHT_DIR/quickstart.sh" 2>&1) || {
  echo "$out" >&2; sht_fail "a quick start command failed"; }
echo "$out" | tail -n 5
# No pipe from echo into a reader that stops early (head, grep -q): with
# pipefail, echo's SIGPIPE on a long output ended the test with status 141.
first=${out%%$'\n'*}
ref=$(jq -r .invoiceReference <<<"$first")
[ -n "$ref" ] && [ "$ref" != null ] || sht_fail "step 1 gave no invoiceReference: $first"
grep -q '"status":"PAID"' <<<"$out" || sht_fail "step 4 did not show PAID"
inv=$(curl -s "http://127.0.0.1:$gw_port/invoices/$ref")
[ "$(echo "$inv" | jq -r .refundedAmount)" = 100.00 ] || sht_fail "step 5 refunded nothing: $inv"

echo "== make install (into a DESTDIR): man pages, unit, and the config kept on reinstall"
root=$SHT_DIR/root
(cd "$tree" && make -s install DESTDIR="$root") >"$SHT_DIR/install.log" 2>&1 || {
  cat "$SHT_DIR/install.log" >&2; sht_fail "make install failed"; }
for f in usr/bin/seqr-gateway usr/bin/seqr-sim usr/share/man/man8/seqr-gateway.8 \
         usr/share/man/man1/seqr-sim.1 usr/lib/systemd/system/seqr-gateway.service \
         etc/seqr-gateway/seqr-gateway.conf etc/seqr-gateway/seqr-gateway.conf.example \
         usr/share/doc/seqr-gateway/examples/seqr-gateway.conf; do
  [ -e "$root/$f" ] || sht_fail "make install did not install /$f"
done
[ "$(stat -c %a "$root/etc/seqr-gateway/seqr-gateway.conf")" = 640 ] || sht_fail "the installed config is not mode 0640"
echo "# edited by the admin" >> "$root/etc/seqr-gateway/seqr-gateway.conf"
(cd "$tree" && make -s install DESTDIR="$root") >"$SHT_DIR/install.log" 2>&1 || sht_fail "make install (again) failed"
grep -q "edited by the admin" "$root/etc/seqr-gateway/seqr-gateway.conf" ||
  sht_fail "make install overwrote the config in use"

echo "== SIGTERM to dev/run stops both daemons"
kill -TERM $run_pid
deadline=$((SECONDS + 30))
while curl -s -o /dev/null "http://127.0.0.1:$gw_port/healthz" || curl -s -o /dev/null "http://127.0.0.1:$sim_port/sim/requests"; do
  [ $SECONDS -lt $deadline ] || sht_fail "after SIGTERM to dev/run the gateway or the simulator still answers"
  sleep 0.2
done
wait $run_pid 2>/dev/null || true
echo "PASS: configured checkout, dev/run, quick start as written, SIGTERM"
