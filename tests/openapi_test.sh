#!/usr/bin/env bash
# openapi_test.sh — docs/openapi.yaml is what the gateway does:
#  1. `redocly lint` (pinned in tests/openapi/package-lock.json): 0 errors and
#     0 warnings (the exceptions are justified in redocly.yaml and
#     .redocly.lint-ignore.yaml);
#  2. tests/openapi/validate.py: every documented operation answers a live
#     gateway as the file says (statuses, schemas, error codes);
#  3. a client generated from the file (openapi-typescript-codegen) creates an
#     invoice, sees it paid and refunds it: what a shop does.
set -euo pipefail
. "$SEQR_SRCDIR/tests/shtest.sh"

command -v node >/dev/null || sht_fail "node is missing (dev/setup installs nodejs)"
python3 -c 'import jsonschema, yaml' 2>/dev/null ||
  sht_fail "python3-jsonschema or python3-yaml is missing (dev/setup installs them)"

sht_start "openapi-test-key-0123456789"

# The pinned tools: dev/setup installs them with npm ci; otherwise try here.
tools=$SEQR_SRCDIR/tests/openapi
if [ ! -f "$tools/node_modules/.package-lock.json" ]; then
  command -v npm >/dev/null || sht_skip "npm is missing and tests/openapi has no node_modules (run dev/setup)"
  tools=$SHT_DIR/tools
  mkdir -p "$tools"
  cp "$SEQR_SRCDIR/tests/openapi/package.json" "$SEQR_SRCDIR/tests/openapi/package-lock.json" "$tools/"
  (cd "$tools" && npm ci --no-audit --no-fund --loglevel=error) >"$SHT_DIR/npm.log" 2>&1 || {
    cat "$SHT_DIR/npm.log" >&2
    sht_skip "the npm registry could not be reached to install tests/openapi's tools"
  }
fi

echo "== redocly lint docs/openapi.yaml"
lint=$(cd "$SEQR_SRCDIR" && "$tools/node_modules/.bin/redocly" lint docs/openapi.yaml 2>&1) || {
  echo "$lint" >&2; sht_fail "redocly lint found errors"; }
echo "$lint" | tail -n 3
if grep -qi "warning" <<<"$lint"; then
  echo "$lint" >&2; sht_fail "redocly lint found warnings"
fi

echo "== live answers against the file"
python3 "$SEQR_SRCDIR/tests/openapi/validate.py" "$SEQR_SRCDIR/docs/openapi.yaml" \
  "$SHT_GW" "$SHT_SIM" "$SHT_API_KEY" || sht_fail "the gateway's answers do not match docs/openapi.yaml"

echo "== a generated client creates, pays and refunds an invoice"
gen=$SHT_DIR/client-test
mkdir -p "$gen"
node "$tools/node_modules/openapi-typescript-codegen/bin/index.js" \
  --input "$SEQR_SRCDIR/docs/openapi.yaml" --output "$gen/generated" --client fetch ||
  sht_fail "openapi-typescript-codegen could not generate a client"
cp "$SEQR_SRCDIR/tests/openapi/client.ts" "$SEQR_SRCDIR/tests/openapi/tsconfig.json" "$gen/"
(cd "$gen" && "$tools/node_modules/.bin/tsc" -p . --outDir out) || sht_fail "the generated client does not compile"
GATEWAY_URL=$SHT_GW API_KEY=$SHT_API_KEY SIM_URL=$SHT_SIM node "$gen/out/client.js" ||
  sht_fail "the generated client could not create and pay an invoice"
echo "PASS: lint clean, live answers match, generated client works"
