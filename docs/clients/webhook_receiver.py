"""Receive seqr-gateway's webhooks in Python and verify them with the Standard
Webhooks library (pip install standardwebhooks). Run: python3 webhook_receiver.py
with WEBHOOK_SECRET set to [webhooks] secret (whsec_...), and [webhooks] url
pointing here (http://127.0.0.1:8000/seqr-webhook)."""
import json
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

wh = Webhook(os.environ["WEBHOOK_SECRET"])
seen = set()  # a real shop keeps handled webhook-ids in its database


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            # Checks webhook-signature against webhook-id, webhook-timestamp
            # (at most 5 minutes old) and the exact bytes of the body.
            event = wh.verify(body, {k.lower(): v for k, v in self.headers.items()})
        except WebhookVerificationError:
            self.send_response(400)
            self.end_headers()
            return
        # At least once: a retry after a lost answer repeats an event; its
        # webhook-id ("evt_<id>") stays the same.
        if self.headers["webhook-id"] not in seen:
            seen.add(self.headers["webhook-id"])
            if event["type"] == "invoice.paid":
                print("order", event["data"]["clientInvoiceId"], "is paid:",
                      event["data"]["totalAmount"], event["data"]["currency"])
        self.send_response(204)  # any 2xx ends the delivery; 410 disables this URL
        self.end_headers()


HTTPServer(("127.0.0.1", 8000), Handler).serve_forever()
