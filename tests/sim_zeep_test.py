"""seqr-sim against a stock SOAP toolkit: Python's zeep reads the WSDL and
drives sendInvoice -> (buyer pays) -> getPaymentStatus -> submitPaymentReceipt.
Usage: sim_zeep_test.py http://127.0.0.1:PORT   (exit 0 = passed)"""
import json
import sys
import urllib.request
from decimal import Decimal

import zeep

base = sys.argv[1]
client = zeep.Client(base + "/soap?wsdl")
ctx = {"channel": "WS", "clientId": "Company Name", "clientReference": "zeep 4",
       "clientRequestTimeout": 0,
       "initiatorPrincipalId": {"id": "seqr-sim-terminal", "type": "TERMINALID"},
       "password": "terminal-password"}
invoice = {"paymentMode": "IMMEDIATE_DEBIT", "acknowledgmentMode": "NO_ACKNOWLEDGMENT",
           "title": "zeep order & <more>",
           "invoiceRows": {"invoiceRow": [
               {"itemDescription": "Tea", "itemQuantity": Decimal("2"),
                "itemTotalAmount": {"value": Decimal("12.50"), "currency": "SEK"}}]},
           "totalAmount": {"value": Decimal("12.50"), "currency": "SEK"}}

sent = client.service.sendInvoice(context=ctx, invoice=invoice)
assert sent.resultCode == 0, sent
ref = sent.invoiceReference
assert sent.invoiceQRCode == "HTTP://SEQR.SE/R" + ref, sent.invoiceQRCode

status = client.service.getPaymentStatus(context=ctx, invoiceReference=ref, invoiceVersion=0)
assert status.resultCode == 0 and status.status == "ISSUED", status

req = urllib.request.Request(base + "/sim/invoices/%s/pay" % ref, data=b"", method="POST")
assert json.load(urllib.request.urlopen(req))["status"] == "PAID"

status = client.service.getPaymentStatus(context=ctx, invoiceReference=ref,
                                         invoiceVersion=status.version)
assert status.resultCode == 0 and status.status == "PAID", status
assert len(status.ersReference) == 25
assert status.receipt.invoice.totalAmount.value == Decimal("12.50")

receipt = client.service.submitPaymentReceipt(context=ctx, ersReference=status.ersReference,
                                              receiptDocument={})
assert receipt.resultCode == 0, receipt

wrong = dict(ctx, password="wrong")
denied = client.service.getPaymentStatus(context=wrong, invoiceReference=ref, invoiceVersion=0)
assert denied.resultCode == 20, denied
print("zeep: sendInvoice, getPaymentStatus, submitPaymentReceipt ok for", ref)
