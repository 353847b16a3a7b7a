"""Create a SEQR invoice through seqr-gateway from Python (standard library
only), then wait for its outcome on the gateway's event feed (GET /events with
wait=: a long-poll, no polling loop). A shop that can receive webhooks gets the
same events pushed instead: see webhook_receiver.py. Run: python3 create_invoice.py"""
import json
import os
import urllib.error
import urllib.request
import uuid

GATEWAY = os.environ.get("GATEWAY_URL", "http://127.0.0.1:8080")
API_KEY = os.environ.get("API_KEY", "")


def gateway(method, path, body=None, idempotency_key=None):
    headers = {"Content-Type": "application/json"}
    if API_KEY:
        headers["Authorization"] = "Bearer " + API_KEY
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(GATEWAY + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as e:
        raise RuntimeError(json.load(e)["error"]["message"]) from None


# One Idempotency-Key per payment attempt of an order: a retry of this very
# request (after a timeout) reuses it; a new attempt gets a new one.
order_id = os.environ.get("ORDER_ID", "1001")
idempotency_key = "order-%s-%s" % (order_id, uuid.uuid4())
invoice = gateway("POST", "/invoices", {
    "currency": "SEK",  # amounts are strings: exact, no floats
    "title": "Order " + order_id,
    "clientInvoiceId": order_id,
    "rows": [{"quantity": "1", "totalAmount": "149.99", "description": "T-shirt"}],
}, idempotency_key=idempotency_key)
print("Show this QR code:", invoice["qrCode"], "or link phones to", invoice["seqrUrl"])

# The events that end an invoice, and the status each leaves it in.
FINAL = {"invoice.paid": "PAID", "invoice.canceled": "CANCELED",
         "invoice.expired": "CANCELED", "invoice.failed": "FAILED"}
# A shop keeps the feed's cursor ("next") in its database and starts from 0 once.
cursor = int(os.environ.get("EVENT_CURSOR", "0"))
status = None
while status is None:
    page = gateway("GET", "/events?after=%d&limit=100&wait=30" % cursor)
    for event in page["events"]:
        if event["invoiceReference"] == invoice["invoiceReference"] and event["type"] in FINAL:
            status = FINAL[event["type"]]
    cursor = page["next"]
print("Invoice is", status)
