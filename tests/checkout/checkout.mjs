// checkout.mjs — the payment page (GET /pay/{token}) in a real browser:
// Debian's chromium driven by puppeteer-core (pinned in package-lock.json).
// Run by tests/checkout_test.sh, which starts the simulator and the gateway:
//   node checkout.mjs main|expiry GATEWAY_URL SIM_URL API_KEY SCREENS_DIR
// Writes screenshots into SCREENS_DIR for a person to look at.
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import puppeteer from "puppeteer-core";

const [mode, GW, SIM, KEY, SCREENS] = process.argv.slice(2);
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 375, height: 812, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };
mkdirSync(SCREENS, { recursive: true });

let failures = 0;
function check(ok, what) {
  console.log(`${ok ? "ok" : "FAIL"}: ${what}`);
  if (!ok) failures++;
}

async function api(method, path, body) {
  const r = await fetch(GW + path, {
    method,
    headers: { Authorization: `Bearer ${KEY}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await r.json();
  if (!r.ok) throw new Error(`${method} ${path} -> ${r.status} ${JSON.stringify(json)}`);
  return json;
}

async function newInvoice(title) {
  return api("POST", "/invoices", {
    currency: "SEK",
    title,
    clientInvoiceId: "1001",
    backUrl: `${GW}/healthz?back=${encodeURIComponent(title)}`,
    rows: [
      { quantity: "2", unitPrice: "1250.00", totalAmount: "2500.00", description: "Ryggsäck Fjäll 28 l" },
      { quantity: "1", totalAmount: "49.50", description: "Frakt" },
    ],
  });
}

async function simPay(ref) {
  const r = await fetch(`${SIM}/sim/invoices/${ref}/pay`, { method: "POST" });
  if (!r.ok) throw new Error(`sim pay ${ref} -> ${r.status}`);
}

// Opens the page of inv in a fresh page with viewport and language; CSP
// violations and script errors are failures.
async function open(browser, inv, viewport, lang) {
  const page = await browser.newPage();
  await page.setViewport(viewport);
  if (viewport.isMobile)
    await page.setUserAgent(
      "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36");
  await page.setExtraHTTPHeaders({ "Accept-Language": lang });
  page.on("console", (m) => {
    if (/Content Security Policy|Refused/i.test(m.text())) check(false, `no CSP violation (${m.text()})`);
  });
  page.on("pageerror", (e) => check(false, `no script error (${e.message})`));
  // How the page followed the state: requests to its stream and its status.
  page.streamRequests = 0;
  page.statusRequests = 0;
  page.on("request", (r) => {
    const path = new URL(r.url()).pathname;
    if (/^\/pay\/[0-9A-Za-z_-]+\.[0-9a-f]{32}\/events$/.test(path)) page.streamRequests++;
    if (/^\/pay\/[0-9A-Za-z_-]+\.[0-9a-f]{32}\/status$/.test(path)) page.statusRequests++;
  });
  // (Not networkidle: the page's event stream stays open.)
  const resp = await page.goto(GW + inv.paymentPageUrl, { waitUntil: "load" });
  check(resp.status() === 200, `page of ${inv.invoiceReference} answers 200`);
  return page;
}

async function state(page) {
  return page.$eval("#checkout", (m) => m.getAttribute("data-state"));
}

async function visible(page, selector) {
  return page.$eval(selector, (e) => {
    const s = getComputedStyle(e);
    return s.display !== "none" && s.visibility !== "hidden" && e.getClientRects().length > 0;
  }).catch(() => false);
}

// Waits until the page is in state; returns the milliseconds it took.
async function waitState(page, want, timeoutMs) {
  const t0 = Date.now();
  try {
    await page.waitForSelector(`#checkout[data-state="${want}"]`, { timeout: timeoutMs });
  } catch (e) {
    return -1;
  }
  return Date.now() - t0;
}

// The QR code as the screen shows it, decoded by zbarimg.
async function decodeQr(page, file) {
  const el = await page.$("svg.qr-code");
  await el.screenshot({ path: file });
  try {
    // (zbarimg's stderr only says it found no D-Bus, on a server.)
    return execFileSync("zbarimg", ["--quiet", "--raw", file], { stdio: ["ignore", "pipe", "ignore"] })
      .toString().trim();
  } catch (e) {
    return "";
  }
}

async function main(browser) {
  // 1. Desktop, English: QR decodes to qrCode, no app button; paid -> confirmation, backUrl.
  const a = await newInvoice("Order 1001");
  check(typeof a.paymentPageUrl === "string" &&
    a.paymentPageUrl.startsWith(`/pay/${a.invoiceReference}.`) &&
    /^\/pay\/[0-9A-Za-z_-]+\.[0-9a-f]{32}$/.test(a.paymentPageUrl),
    `paymentPageUrl is /pay/<reference>.<32 hex> (${a.paymentPageUrl})`);
  let page = await open(browser, a, DESKTOP, "en-GB,en;q=0.9");
  check((await state(page)) === "pending", "a new invoice's page is pending");
  const decoded = await decodeQr(page, join(SCREENS, "qr-1280.png"));
  check(decoded === a.qrCode, `the QR code on screen decodes to qrCode (${decoded})`);
  check(!(await visible(page, "a.app")), "no app button on a desktop");
  check((await page.$eval("h1", (e) => e.textContent)) === "Order 1001", "the title is shown");
  const total = await page.$eval(".amount-value", (e) => e.textContent);
  check(total === "SEK\u00a02,549.50", `the total in English (${total})`);
  const alt = await page.$eval("svg.qr-code title", (e) => e.textContent);
  check(alt.includes(a.qrCode), "the QR code has a text alternative");
  await page.screenshot({ path: join(SCREENS, "pending-1280.png"), fullPage: true });

  const t0 = Date.now();
  await simPay(a.invoiceReference);
  const paidMs = await waitState(page, "paid", 2000);
  check(paidMs >= 0, `the confirmation shows within 2 s of paying (${Date.now() - t0} ms)`);
  check(await visible(page, "#outcome-paid-title"), "the confirmation is visible");
  await page.screenshot({ path: join(SCREENS, "paid-1280.png"), fullPage: true });
  const transport = await page.$eval("#checkout", (m) => m.getAttribute("data-transport"));
  check(transport === "events" && page.streamRequests >= 1 && page.statusRequests === 0,
    `the page followed its event stream (transport ${transport}, ${page.streamRequests} stream, ` +
    `${page.statusRequests} status requests)`);
  const t1 = Date.now();
  try {
    await page.waitForFunction((u) => location.href === u, { timeout: 2000 }, a.backUrl);
    check(true, `went to backUrl ${Date.now() - t1} ms after the confirmation (${Date.now() - t0} ms after paying)`);
  } catch (e) {
    check(false, `went to backUrl within 2 s of the confirmation (at ${page.url()})`);
  }
  await page.close();

  // A reload shows the current state at once (server-rendered).
  const html = await (await fetch(GW + a.paymentPageUrl)).text();
  check(html.includes('data-state="paid"'), "a reload of a paid invoice's page shows paid");

  // 2. Phone, Swedish: the app button leads; canceled -> says so, offers the way back.
  const b = await newInvoice("Order 1002");
  page = await open(browser, b, PHONE, "sv-SE,sv;q=0.9,en;q=0.5");
  check(await visible(page, "a.app"), "a phone shows the app button");
  const href = await page.$eval("a.app", (e) => e.getAttribute("href"));
  check(href === b.seqrUrl, `the app button opens the SEQR app (${href})`);
  check((await page.$eval("html", (e) => e.lang)) === "sv", "Swedish from Accept-Language");
  const kr = await page.$eval(".amount-value", (e) => e.textContent);
  check(kr === "2\u00a0549,50\u00a0kr", `the total in Swedish (${kr})`);
  // What a screen reader gets: the app button and the QR code by name.
  const tree = await page.accessibility.snapshot({ interestingOnly: true });
  const names = [];
  (function walk(n) { if (!n) return; names.push(`${n.role}:${n.name}`); (n.children || []).forEach(walk); })(tree);
  check(names.includes("link:Betala med SEQR-appen"), "the app button has an accessible name");
  check(names.some((n) => n.startsWith("image:QR-kod") && n.includes(b.qrCode)),
    `the QR code is an image with a text alternative (${names.filter((n) => n.startsWith("image")).join("; ")})`);
  await page.screenshot({ path: join(SCREENS, "pending-375.png"), fullPage: true });
  const rows = await page.$("details.order summary");
  await rows.click();
  await page.screenshot({ path: join(SCREENS, "pending-rows-375.png"), fullPage: true });
  await api("POST", `/invoices/${b.invoiceReference}/cancel`, {});
  const canceledMs = await waitState(page, "canceled", 2000);
  check(canceledMs >= 0, `a cancel shows within 2 s (${canceledMs} ms)`);
  const h2 = await page.$eval("#outcome-canceled-title", (e) => e.textContent);
  check(h2 === "Betalningen avbröts", `it says so in Swedish (${h2})`);
  check(await visible(page, ".outcome-canceled a.back"), "it offers the way back");
  check((await page.$eval(".outcome-canceled a.back", (e) => e.href)) === b.backUrl,
    "the way back is backUrl");
  await page.screenshot({ path: join(SCREENS, "canceled-375.png"), fullPage: true });
  await page.reload({ waitUntil: "domcontentloaded" });
  check((await state(page)) === "canceled", "a reload shows canceled");
  await page.close();

  // A payment that fails at SEQR says so too.
  const f = await newInvoice("Order 1005");
  page = await open(browser, f, DESKTOP, "en");
  const fr = await fetch(`${SIM}/sim/invoices/${f.invoiceReference}/fail`, { method: "POST" });
  check(fr.ok, `the simulator fails ${f.invoiceReference}`);
  check((await waitState(page, "failed", 2000)) >= 0, "a failed payment shows within 2 s");
  check(await visible(page, ".outcome-failed a.back"), "failed offers the way back");
  await page.close();

  // 3. Without EventSource or the stream: the status fallback alone keeps it live.
  const c = await newInvoice("Order 1003");
  page = await browser.newPage();
  await page.evaluateOnNewDocument(() => { delete window.EventSource; });
  await page.goto(GW + c.paymentPageUrl, { waitUntil: "networkidle0" });
  await simPay(c.invoiceReference);
  check((await waitState(page, "paid", 2000)) >= 0, "without EventSource the page still sees paid");
  check((await page.$eval("#checkout", (m) => m.getAttribute("data-transport"))) === "poll",
    "without EventSource the page polls its status");
  await page.close();
  // A proxy that refuses the stream: the page falls back to the status.
  const d = await newInvoice("Order 1006");
  page = await browser.newPage();
  await page.setRequestInterception(true);
  page.on("request", (r) => (new URL(r.url()).pathname.endsWith("/events")
    ? r.respond({ status: 502, contentType: "text/plain", body: "bad gateway" })
    : r.continue()));
  await page.goto(GW + d.paymentPageUrl, { waitUntil: "load" });
  await simPay(d.invoiceReference);
  check((await waitState(page, "paid", 5000)) >= 0, "with its stream refused the page still sees paid");
  check((await page.$eval("#checkout", (m) => m.getAttribute("data-transport"))) === "poll",
    "with its stream refused the page polls its status");
  await page.close();

  // 4. Wrong tokens and other paths answer 404 with no data.
  const token = a.paymentPageUrl.slice(5);
  const other = token.slice(0, -1) + (token.endsWith("0") ? "1" : "0");
  // (also: this invoice's reference with another's secret, and its secret alone)
  const crossed = `/pay/${a.invoiceReference}.${b.paymentPageUrl.split(".").pop()}`;
  const bare = `/pay/${token.split(".").pop()}`;
  for (const path of [`/pay/${other}`, `/pay/${"0".repeat(32)}`, `/pay/${a.invoiceReference}`,
                      crossed, bare]) {
    const r = await fetch(GW + path);
    const text = await r.text();
    check(r.status === 404 && !text.includes(a.invoiceReference) && !text.includes("SEQR.SE"),
          `a wrong token ${path.replace(token, "<token>")} -> 404, no data (${r.status})`);
  }
  for (const path of [
                      `/pay/${token}/refunds`, `/pay/${other}/status`, `/pay/${token.toUpperCase()}`,
                      `/pay/${token}x`, "/pay/", "/pay/assets/x.js"]) {
    const r = await fetch(GW + path);
    const text = await r.text();
    // A wrong token is 404; a path that is no route of the page's is the
    // API's, behind its key (401).
    check((r.status === 404 || r.status === 401) && !text.includes(a.invoiceReference) &&
          !text.includes("Order 1001") && !text.includes("SEQR.SE"),
          `${path.replace(token, "<token>")} -> ${r.status}, no data`);
  }
  const r401 = await fetch(`${GW}/invoices/${a.invoiceReference}`, { headers: { Authorization: `Bearer ${token}` } });
  check(r401.status === 401, "a pay token is no API key");
  const st = await (await fetch(`${GW}${a.paymentPageUrl}/status`)).json();
  check(Object.keys(st).sort().join(",") === "expiresIn,state,status,version",
    `the status answer holds the state only (${Object.keys(st)})`);

  // 5. Fast and strict: page + assets under 50 KB, CSP without inline code.
  const pageResp = await fetch(GW + b.paymentPageUrl);
  const pageLen = (await pageResp.text()).length;
  const css = (await (await fetch(`${GW}/pay/assets/checkout.css`)).text()).length;
  const js = (await (await fetch(`${GW}/pay/assets/checkout.js`)).text()).length;
  check(pageLen + css + js < 50 * 1024, `page ${pageLen} + css ${css} + js ${js} bytes < 50 KB`);
  const csp = pageResp.headers.get("content-security-policy") || "";
  check(/script-src 'self'/.test(csp) && !/unsafe-inline/.test(csp) && /frame-ancestors/.test(csp),
    `strict CSP (${csp})`);
}

async function expiry(browser) {
  const d = await newInvoice("Order 1004");
  const page = await open(browser, d, DESKTOP, "en");
  const left = await page.$eval("#checkout", (m) => parseInt(m.getAttribute("data-expires-in"), 10));
  check(left > 0 && left <= 15, `the page knows the time left (${left} s)`);
  const ms = await waitState(page, "expired", (left + 30) * 1000);
  check(ms >= 0, `an unpaid invoice's page says it expired (${ms} ms)`);
  check(await visible(page, ".outcome-expired a.back"), "expired offers the way back");
  await page.screenshot({ path: join(SCREENS, "expired-1280.png"), fullPage: true });
  await page.reload({ waitUntil: "domcontentloaded" });
  check((await state(page)) === "expired", "a reload shows expired");
}

const browser = await puppeteer.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
});
try {
  if (mode === "expiry") await expiry(browser);
  else await main(browser);
} catch (e) {
  check(false, `no exception (${e.stack})`);
} finally {
  await browser.close();
}
writeFileSync(join(SCREENS, `${mode}.result`), failures ? "FAIL\n" : "PASS\n");
process.exit(failures ? 1 : 0);
