// client.ts — what a shop does with a client generated from docs/openapi.yaml
// (openapi-typescript-codegen, fetch): create an invoice, let the buyer pay
// (the simulator), see it PAID, refund part of it. Compiled and run by
// tests/openapi_test.sh with GATEWAY_URL, API_KEY and SIM_URL set.
import { ApiError, DefaultService, OpenAPI } from "./generated";

// Node's globals, declared here so that no @types package is needed.
declare const process: { env: Record<string, string | undefined>; exit(code: number): never };
// A fresh Idempotency-Key per attempt (Node 18 has no global crypto.randomUUID).
const attempt = (): string => `${Date.now()}-${Math.random().toString(36).slice(2)}`;

async function main(): Promise<void> {
  OpenAPI.BASE = process.env.GATEWAY_URL as string;
  OpenAPI.TOKEN = process.env.API_KEY;
  const sim = process.env.SIM_URL as string;

  const health = await DefaultService.getHealth();
  if (health.status !== "ok") throw new Error(`healthz: ${health.status}`);

  let invoice = await DefaultService.createInvoice(
    {
      currency: "SEK",
      title: "Order 2001",
      clientInvoiceId: "2001",
      rows: [
        { quantity: "2", unitPrice: "250.00", totalAmount: "500.00", description: "Laptop" },
        { quantity: "1", totalAmount: "49.50", description: "Shipping" },
      ],
    },
    `order-2001-${attempt()}`,
  );
  if (invoice.status !== "ISSUED" || invoice.totalAmount !== "549.50")
    throw new Error(`created: ${JSON.stringify(invoice)}`);
  const ref = invoice.invoiceReference as string;
  console.log(`created ${ref}: ${invoice.qrCode}`);

  // A row whose numbers disagree is refused with the documented error.
  try {
    await DefaultService.createInvoice({
      currency: "SEK",
      rows: [{ quantity: "2", unitPrice: "250.00", totalAmount: "400.00" }],
    });
    throw new Error("a row of 2 x 250.00 = 400.00 was accepted");
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 422 || e.body.error.field !== "rows[0].totalAmount")
      throw e;
  }

  const paid = await fetch(`${sim}/sim/invoices/${ref}/pay`, { method: "POST" });
  if (!paid.ok) throw new Error(`simulator pay: ${paid.status}`);
  for (let i = 0; i < 100 && invoice.status !== "PAID"; i++) {
    await new Promise((r) => setTimeout(r, 100));
    invoice = await DefaultService.getInvoice(ref);
  }
  if (invoice.status !== "PAID") throw new Error(`not PAID: ${invoice.status}`);
  console.log(`${ref} is PAID (${invoice.ersReference})`);

  const refund = await DefaultService.createRefund(ref, { amount: "100.00", title: "Damaged box" },
                                                   `refund-${attempt()}`);
  if (refund.status !== "done") throw new Error(`refund: ${JSON.stringify(refund)}`);
  const after = await DefaultService.getInvoice(ref);
  if (after.refundedAmount !== "100.00") throw new Error(`refundedAmount ${after.refundedAmount}`);
  console.log(`${ref} refunded 100.00`);
}

main().catch((e) => {
  console.error(e instanceof ApiError ? `${e.status} ${JSON.stringify(e.body)}` : e);
  process.exit(1);
});
