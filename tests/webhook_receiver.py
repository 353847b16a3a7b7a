#!/usr/bin/env python3
"""A shop's webhook endpoint for the tests: verifies every request's Standard
Webhooks signature with its own implementation (Python's hmac and hashlib,
nothing of the gateway's), and appends one JSON line per request to --out:
{"msgId", "ok", "event", "path", "at"} (ok false: the signature did not verify).

--mode ok answers 200; hang waits --hang seconds, then answers 200; gone
answers 410. Usage: webhook_receiver.py --port P --secret whsec_... --out F
"""
import argparse
import base64
import hashlib
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--secret", required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--mode", default="ok", choices=["ok", "hang", "gone"])
ap.add_argument("--hang", type=float, default=30.0)
args = ap.parse_args()

KEY = base64.b64decode(args.secret[len("whsec_"):])
LOCK = threading.Lock()
TOLERANCE_S = 300


def verify(headers, body):
    msg_id = headers.get("webhook-id")
    ts = headers.get("webhook-timestamp")
    sigs = headers.get("webhook-signature")
    if not msg_id or not ts or not sigs:
        return False
    if abs(time.time() - int(ts)) > TOLERANCE_S:
        return False
    signed = msg_id.encode() + b"." + ts.encode() + b"." + body
    want = base64.b64encode(hmac.new(KEY, signed, hashlib.sha256).digest()).decode()
    for s in sigs.split(" "):
        version, _, sig = s.partition(",")
        if version == "v1" and hmac.compare_digest(sig, want):
            return True
    return False


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        if args.mode == "hang":
            time.sleep(args.hang)
        if args.mode == "gone":
            self.send_response(410)
            self.end_headers()
            return
        ok = verify(self.headers, body)
        try:
            event = json.loads(body)
        except ValueError:
            event = None
        line = json.dumps({"msgId": self.headers.get("webhook-id"), "ok": ok, "event": event,
                           "path": self.path, "at": time.time()})
        with LOCK:
            with open(args.out, "a") as f:
                f.write(line + "\n")
        self.send_response(200 if ok else 400)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


ThreadingHTTPServer.daemon_threads = True
# The default listen backlog (5) drops connections of a burst, which then
# wait for TCP's 1 s SYN retransmit: a receiver's fault, not the gateway's.
ThreadingHTTPServer.request_queue_size = 1024
srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
sys.stdout.write("listening\n")
sys.stdout.flush()
srv.serve_forever()
