#!/usr/bin/env python3
"""validate.py — checks docs/openapi.yaml against the live gateway.

Usage: validate.py SPEC GATEWAY_URL SIMULATOR_URL API_KEY

1. The file itself: every operation has an operationId, every 4XX/5XX answer
   lists the error codes it can carry (x-error-codes) and has the Error schema,
   unless it says `x-not-an-error: true` (GET /healthz's 503 carries the
   Health verdict, so that a monitor reads the same fields as in a 200).
2. A scenario drives every operation the file documents (a shop's day:
   create, read, update, pay, receipt, refund, commit, cancel, reports,
   terminals, errors) and checks every answer: its status is documented for
   that operation, its Content-Type is documented, a JSON body validates
   against the schema (with objects closed: a field the file does not name is
   an error, so the file cannot drift from the code), and an error's code is
   one of the response's x-error-codes.
3. Operations the scenario does not know (added later to the file) are still
   called, generically: path parameters from the scenario's invoice and
   terminal, query parameters and bodies from the schema's examples; their
   answers are checked the same way.
Every operation must have been answered at least once, and every recipe of
the scenario must have answered with the status it expects.
"""
import copy
import json
import re
import sys
import time
import urllib.error
import urllib.request

import jsonschema
import yaml

METHODS = ("get", "put", "post", "delete", "patch")

failures = []
answered = {}  # operationId -> set of statuses seen


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg)


def resolve(spec, node):
    while isinstance(node, dict) and "$ref" in node:
        path = node["$ref"].lstrip("#/").split("/")
        node = spec
        for p in path:
            node = node[p.replace("~1", "/").replace("~0", "~")]
    return node


def to_json_schema(spec, node, seen=()):
    """OpenAPI 3.0 schema -> JSON Schema (draft 4): $refs inlined, nullable
    as a null type, and objects closed unless they say otherwise."""
    if isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if ref in seen:
            return {}
        return to_json_schema(spec, resolve(spec, node), seen + (ref,))
    if isinstance(node, list):
        return [to_json_schema(spec, n, seen) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for k, v in node.items():
        if k in ("example", "description", "nullable", "format", "default") or k.startswith("x-"):
            continue
        if k == "properties":
            out[k] = {name: to_json_schema(spec, sub, seen) for name, sub in v.items()}
        elif k in ("items", "additionalProperties", "allOf", "anyOf", "oneOf", "not"):
            out[k] = to_json_schema(spec, v, seen)
        else:
            out[k] = copy.deepcopy(v)
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def operations(spec):
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                params = item.get("parameters", []) + item[method].get("parameters", [])
                yield path, method, item[method], [resolve(spec, p) for p in params]


def check_file(spec):
    for path, method, op, _ in operations(spec):
        name = "%s %s" % (method.upper(), path)
        if not op.get("operationId"):
            fail("%s has no operationId" % name)
        for status, resp in op["responses"].items():
            resp = resolve(spec, resp)
            if status[0] in "45" and resp.get("x-not-an-error") is not True:
                codes = resp.get("x-error-codes")
                if not codes:
                    fail("%s: answer %s lists no x-error-codes" % (name, status))
                schema = resp.get("content", {}).get("application/json", {}).get("schema")
                if schema is None or resolve(spec, schema) is not resolve(
                        spec, {"$ref": "#/components/schemas/Error"}):
                    fail("%s: answer %s is not an Error" % (name, status))


def match(spec, method, path):
    for tpath, m, op, params in operations(spec):
        if m != method.lower():
            continue
        rx = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(tpath)) + "$"
        if re.match(rx, path.split("?")[0]):
            return tpath, op
    return None, None


def call(gw, key, method, path, body=None, headers=None, auth=True):
    h = {}
    if auth and key:
        h["Authorization"] = "Bearer " + key
    data = None
    if body is not None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    h.update(headers or {})
    req = urllib.request.Request(gw + path, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


class Run:
    def __init__(self, spec, gw, sim, key):
        self.spec, self.gw, self.sim, self.key = spec, gw, sim, key
        self.checked = 0

    def check(self, method, path, status, ctype, raw):
        """Validates one answer against the file; returns the parsed JSON body."""
        tpath, op = match(self.spec, method, path)
        where = "%s %s -> %d" % (method, path, status)
        if op is None:
            fail("%s: no operation in the file matches" % where)
            return None
        answered.setdefault(op["operationId"], set()).add(status)
        resp = op["responses"].get(str(status)) or op["responses"].get("%dXX" % (status // 100))
        if resp is None:
            fail("%s: status %d is not documented for %s" % (where, status, op["operationId"]))
            return None
        resp = resolve(self.spec, resp)
        content = resp.get("content", {})
        mtype = ctype.split(";")[0].strip()
        if not content:
            if raw:
                fail("%s: a body the file does not document" % where)
            return None
        if mtype not in content:
            fail("%s: Content-Type %r is not one of %s" % (where, mtype, list(content)))
            return None
        self.checked += 1
        if mtype != "application/json":
            return raw
        try:
            body = json.loads(raw)
        except ValueError:
            fail("%s: not JSON: %r" % (where, raw[:200]))
            return None
        schema = content[mtype].get("schema")
        if schema is not None:
            v = jsonschema.Draft4Validator(to_json_schema(self.spec, schema))
            for err in sorted(v.iter_errors(body), key=lambda e: list(e.path)):
                fail("%s: %s at %s" % (where, err.message, "/".join(map(str, err.path)) or "body"))
        if status >= 400 and isinstance(body, dict) and resp.get("x-not-an-error") is not True:
            code = body.get("error", {}).get("code")
            if code not in resp.get("x-error-codes", []):
                fail("%s: error code %r is not in %s" % (where, code, resp.get("x-error-codes")))
        return body

    def do(self, method, path, body=None, expect=None, headers=None, auth=True):
        status, ctype, raw = call(self.gw, self.key, method, path, body, headers, auth)
        parsed = self.check(method, path, status, ctype, raw)
        if expect is not None and status != expect:
            fail("%s %s: expected %d, got %d: %r" % (method, path, expect, status, raw[:300]))
        return parsed if parsed is not None else {}

    def wait_status(self, ref, want):
        for _ in range(100):
            inv = self.do("GET", "/invoices/" + ref, expect=200)
            if inv.get("status") == want:
                return inv
            time.sleep(0.1)
        fail("invoice %s never became %s" % (ref, want))
        return {}

    def sim_pay(self, ref):
        req = urllib.request.Request(self.sim + "/sim/invoices/%s/pay" % ref, data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()


def invoice_body(**extra):
    body = {"currency": "SEK", "title": "Order 3001", "clientInvoiceId": "3001",
            "cashierId": "web", "footer": "Thanks", "backUrl": "https://shop.example/back",
            "clientReference": "ref-3001",
            "rows": [{"quantity": "2", "unitPrice": "250.00", "totalAmount": "500.00",
                      "description": "Laptop", "taxRate": 25, "sku": "16", "ean": "0076232342123",
                      "unit": "pcs", "discount": "0.00"},
                     {"quantity": "1.5", "unitPrice": "33.00", "totalAmount": "49.50",
                      "description": "Shipping"}]}
    body.update(extra)
    return body


def scenario(r):
    """The recipes: returns the context the generic pass fills path parameters from."""
    r.do("GET", "/healthz", expect=200, auth=False)
    r.do("GET", "/invoices", expect=401, auth=False)

    inv = r.do("POST", "/invoices", invoice_body(), expect=201,
               headers={"Idempotency-Key": "validate-%d" % time.time_ns()})
    ref = inv.get("invoiceReference", "0")
    r.do("POST", "/invoices", "{not json", expect=400)
    r.do("POST", "/invoices", invoice_body(rows=[{"quantity": "2", "unitPrice": "250.00",
                                                  "totalAmount": "400.00"}]), expect=422)
    r.do("POST", "/invoices", {"currency": "SEK", "rows": [{"quantity": "1"}]}, expect=400)
    r.do("GET", "/invoices", expect=200)
    r.do("GET", "/invoices?status=ISSUED&limit=1", expect=200)
    r.do("GET", "/invoices?limit=0", expect=400)
    r.do("GET", "/invoices/" + ref, expect=200)
    r.do("GET", "/invoices/999999999", expect=404)
    r.do("PUT", "/invoices/" + ref, invoice_body(title="Order 3001, corrected"), expect=200)
    r.do("GET", "/invoices/%s/status" % ref, expect=200)
    for fmt in ("svg", "png", "txt"):
        r.do("GET", "/invoices/%s/qr.%s" % (ref, fmt), expect=200)
    r.do("GET", "/invoices/%s/qr.txt?size=0" % ref, expect=400)
    r.do("POST", "/invoices/%s/receipt" % ref, {}, expect=409)
    r.do("GET", "/invoices/%s/receipt.html" % ref, expect=409)
    r.do("POST", "/invoices/%s/refunds" % ref, {"amount": "1.00"}, expect=409)

    r.sim_pay(ref)
    r.wait_status(ref, "PAID")
    r.do("POST", "/invoices/%s/receipt" % ref,
         {"mimeType": "text/html", "receiptType": "PAYMENT_RECEIPT",
          "receiptData": "PGh0bWw+PC9odG1sPg=="}, expect=200)
    r.do("GET", "/invoices/%s/receipt.html" % ref, expect=200)
    r.do("POST", "/invoices/%s/refunds" % ref, {"amount": "100.00", "title": "Damaged box"},
         expect=201)
    r.do("POST", "/invoices/%s/refunds" % ref, {"amount": "5000.00"}, expect=422)
    r.do("GET", "/invoices/%s/refunds" % ref, expect=200)
    r.do("POST", "/invoices/%s/refunds/1/resolve" % ref, {"outcome": "failed"}, expect=409)
    r.do("POST", "/invoices/%s/refunds/99/resolve" % ref, {"outcome": "failed"}, expect=404)
    r.do("POST", "/invoices/%s/cancel" % ref, expect=409)

    res = r.do("POST", "/invoices", invoice_body(paymentMode="RESERVATION_REQUIRED"), expect=201)
    rref = res.get("invoiceReference", "0")
    r.do("POST", "/invoices/%s/commit" % rref, {}, expect=409)
    r.sim_pay(rref)
    r.wait_status(rref, "RESERVED")
    r.do("POST", "/invoices/%s/commit" % rref, {"amount": "549.50"}, expect=200)

    c = r.do("POST", "/invoices", invoice_body(), expect=201)
    cref = c.get("invoiceReference", "0")
    r.do("POST", "/invoices/%s/cancel" % cref, expect=200)

    period = r.do("POST", "/periods", {}, expect=201).get("transactionPeriodId", "")
    r.do("POST", "/reports", {"reportId": "Reconciliation/STD_RECON_003.xml", "language": "en",
                              "parameters": {"transactionPeriodId": period}}, expect=200)
    r.do("POST", "/reports", {"reportId": "Reconciliation/STD_RECON_003.xml"}, expect=400)

    term = r.do("POST", "/terminals", {"externalTerminalId": "Store 1/Till 9", "name": "Till 9"},
                expect=201).get("terminalId", "0")
    r.do("GET", "/terminals/%s/qr.svg" % term, expect=409)
    r.do("POST", "/terminals/%s/seqr-id" % term, {"seqrId": "validatetill9"}, expect=200)
    r.do("GET", "/terminals/%s/qr.png" % term, expect=200)
    t = r.do("POST", "/invoices", invoice_body(terminalId=term), expect=201)
    r.do("DELETE", "/terminals/" + term, expect=409)
    r.do("POST", "/invoices/%s/cancel" % t.get("invoiceReference", "0"), expect=200)
    r.do("DELETE", "/terminals/" + term, expect=200)
    r.do("DELETE", "/terminals/" + term, expect=404)

    r.do("POST", "/seqr/notify/%s?token=wrong" % ref, expect=404, auth=False)
    page = inv.get("paymentPageUrl") or "/pay/none"
    r.do("GET", page, expect=200, auth=False, headers={"Accept-Language": "sv-SE,sv;q=0.9"})
    r.do("GET", page + "/status", expect=200, auth=False)
    r.do("GET", "/pay/" + "0" * 32, expect=404, auth=False)
    r.do("GET", "/pay/%s/status" % ("0" * 32), expect=404, auth=False)
    r.do("GET", "/pay/assets/checkout.css", expect=200, auth=False)
    r.do("GET", "/pay/assets/checkout.js", expect=200, auth=False)
    r.do("GET", "/events?limit=500", expect=200)
    r.do("GET", "/events?after=0&wait=1&limit=1", expect=200)
    r.do("GET", "/events?wait=99", expect=400)
    r.do("GET", "/invoices/%s?waitForVersion=0&timeout=1" % ref, expect=200)
    r.do("GET", "/invoices/%s/events" % ref, expect=200)
    r.do("GET", "/invoices/%s/events" % ref, expect=400, headers={"Last-Event-ID": "x"})
    r.do("GET", "/webhooks/deliveries", expect=200)
    r.do("POST", "/events/1/redeliver", expect=202)
    r.do("POST", "/events/999999999/redeliver", expect=404)
    r.do("GET", "/unknown-outcomes", expect=200)
    r.do("POST", "/unknown-outcomes/invoices/1/resolve", {"outcome": "failed"}, expect=409)
    r.do("POST", "/unknown-outcomes/invoices/999999/resolve", {"outcome": "failed"}, expect=404)
    return {"ref": ref, "id": term, "refundId": "1", "invoiceId": "1", "format": "svg"}


def example_of(spec, schema):
    schema = resolve(spec, schema or {})
    if "example" in schema:
        return schema["example"]
    if "default" in schema:
        return schema["default"]
    if "enum" in schema:
        return schema["enum"][0]
    t = schema.get("type")
    if t == "object" or "properties" in schema:
        return {k: example_of(spec, v) for k, v in schema.get("properties", {}).items()
                if k in schema.get("required", [])}
    if t == "array":
        return [example_of(spec, schema.get("items"))]
    if t == "integer":
        return schema.get("minimum", 1)
    if t == "boolean":
        return True
    return "x"


def generic(r, ctx):
    """Calls every operation no recipe answered, with what the file offers."""
    for path, method, op, params in operations(r.spec):
        if op.get("operationId") in answered:
            continue
        url = path
        query = []
        for p in params:
            if p["in"] == "path":
                value = ctx.get(p["name"], example_of(r.spec, p.get("schema")))
                url = url.replace("{%s}" % p["name"], str(value))
            elif p["in"] == "query" and p.get("required"):
                query.append("%s=%s" % (p["name"], example_of(r.spec, p.get("schema"))))
        if query:
            url += "?" + "&".join(query)
        body = None
        rb = resolve(r.spec, op.get("requestBody", {}))
        if rb.get("content", {}).get("application/json"):
            body = example_of(r.spec, rb["content"]["application/json"].get("schema"))
        print("generic: %s %s" % (method.upper(), url))
        r.do(method.upper(), url, body, auth=op.get("security") != [])


def main():
    spec_path, gw, sim, key = sys.argv[1:5]
    with open(spec_path) as f:
        spec = yaml.safe_load(f)
    check_file(spec)
    r = Run(spec, gw, sim, key)
    ctx = scenario(r)
    generic(r, ctx)
    for _, method, op, _ in operations(spec):
        if op.get("operationId") not in answered:
            fail("%s was never answered" % op.get("operationId"))
    n_ops = sum(1 for _ in operations(spec))
    print("%d operations, %d answered, %d answers validated, %d failures"
          % (n_ops, len(answered), r.checked, len(failures)))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
