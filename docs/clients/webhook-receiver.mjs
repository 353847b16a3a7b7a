// Receive seqr-gateway's webhooks in Node and verify them with the Standard
// Webhooks library (npm install standardwebhooks). Run: node webhook-receiver.mjs
// with WEBHOOK_SECRET set to [webhooks] secret (whsec_...), and [webhooks] url
// pointing here (http://127.0.0.1:8000/seqr-webhook).
import { createServer } from "node:http";
import { Webhook } from "standardwebhooks";

const wh = new Webhook(process.env.WEBHOOK_SECRET);
const seen = new Set(); // a real shop keeps handled webhook-ids in its database

createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks).toString("utf8");
    let event;
    try {
      // Checks webhook-signature against webhook-id, webhook-timestamp (at
      // most 5 minutes old) and the exact body.
      event = wh.verify(body, req.headers);
    } catch {
      res.writeHead(400).end();
      return;
    }
    // At least once: a retry after a lost answer repeats an event with the
    // same webhook-id ("evt_<id>").
    if (!seen.has(req.headers["webhook-id"])) {
      seen.add(req.headers["webhook-id"]);
      if (event.type === "invoice.paid") {
        console.log(`order ${event.data.clientInvoiceId} is paid: ${event.data.totalAmount} ${event.data.currency}`);
      }
    }
    res.writeHead(204).end(); // any 2xx ends the delivery; 410 disables this URL
  });
}).listen(8000, "127.0.0.1");
