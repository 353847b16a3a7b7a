#!/bin/sh
# tests/curl_client_test.sh — the poller-heavy suites once more with
# [poller] http_client = curl (tests/gwtest.c reads SEQR_TEST_HTTP_CLIENT),
# so both poll clients stay tested; the normal run uses the native one.
set -e
top=${SEQR_GATEWAY_BIN%/src/seqr-gateway}
SEQR_TEST_HTTP_CLIENT=curl
export SEQR_TEST_HTTP_CLIENT
for t in check_poller check_gateway; do
  echo "$t with http_client = curl"
  "$top/tests/$t"
done
