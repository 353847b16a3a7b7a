// Create a SEQR invoice through seqr-gateway from Node 18+ (built-in fetch),
// then wait for its outcome on the gateway's event feed (GET /events with wait=:
// a long-poll, no polling loop). A shop that can receive webhooks gets the same
// events pushed instead: see webhook-receiver.mjs. Run: node create-invoice.mjs
import { randomUUID } from "node:crypto";

const gateway = process.env.GATEWAY_URL ?? "http://127.0.0.1:8080";
const apiKey = process.env.API_KEY ?? "";

async function call(method, path, body, idempotencyKey) {
  const headers = { "Content-Type": "application/json" };
  if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
  if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
  const res = await fetch(gateway + path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await res.json();
  if (!res.ok) throw new Error(answer.error?.message ?? `HTTP ${res.status}`);
  return answer;
}

// One Idempotency-Key per payment attempt of an order: a retry of this very
// request (after a timeout) reuses it; a new attempt gets a new one.
const orderId = process.env.ORDER_ID ?? "1001";
const idempotencyKey = `order-${orderId}-${randomUUID()}`;
let invoice = await call("POST", "/invoices", {
  currency: "SEK", // amounts are strings: exact, no floats
  title: `Order ${orderId}`,
  clientInvoiceId: orderId,
  rows: [{ quantity: "1", totalAmount: "149.99", description: "T-shirt" }],
}, idempotencyKey);
console.log(`Show this QR code: ${invoice.qrCode} (or link phones to ${invoice.seqrUrl})`);

// The events that end an invoice, and the status each leaves it in.
const FINAL = { "invoice.paid": "PAID", "invoice.canceled": "CANCELED",
  "invoice.expired": "CANCELED", "invoice.failed": "FAILED" };
// A shop keeps the feed's cursor ("next") in its database and starts from 0 once.
let cursor = Number(process.env.EVENT_CURSOR ?? 0);
let status = null;
while (status === null) {
  const page = await call("GET", `/events?after=${cursor}&limit=100&wait=30`);
  for (const event of page.events) {
    if (event.invoiceReference === invoice.invoiceReference && FINAL[event.type]) {
      status = FINAL[event.type];
    }
  }
  cursor = page.next;
}
console.log(`Invoice is ${status}`);
