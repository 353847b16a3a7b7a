/* checkout.js: keeps the payment page (GET /pay/{token}) in the invoice's
   state. Listens to the page's event stream when the browser has EventSource
   and the page names one (data-events-url); otherwise, or when the stream
   fails, asks data-status-url, once a second while all is well and backing
   off to 15 s while it fails. Every text is in the page already (in the
   buyer's language): this only switches main[data-state]. On "paid" it goes
   to the shop's backUrl after a moment. */
(function () {
  "use strict";
  var page = document.getElementById("checkout");
  if (!page || !window.fetch) return;
  var FINAL = { paid: 1, canceled: 1, failed: 1, expired: 1 };
  var statusUrl = page.getAttribute("data-status-url");
  var eventsUrl = page.getAttribute("data-events-url");
  var backUrl = page.getAttribute("data-back-url");
  var version = parseInt(page.getAttribute("data-version"), 10) || 0;
  var left = parseInt(page.getAttribute("data-expires-in"), 10) || 0;
  var deadline = Date.now() + left * 1000;
  var delay = 1000, timer = null, stream = null, redirecting = false;

  function show(state) {
    if (page.getAttribute("data-state") === state) return;
    page.setAttribute("data-state", state);
    var heading = document.getElementById("outcome-" + state + "-title");
    if (heading) heading.focus();
  }

  function settle(state) {
    show(state);
    if (!FINAL[state]) return false;
    if (stream) { stream.close(); stream = null; }
    if (timer) { clearTimeout(timer); timer = null; }
    if (state === "paid" && backUrl && !redirecting) {
      redirecting = true;
      setTimeout(function () { window.location.assign(backUrl); }, 1000);
    }
    return true;
  }

  function offline(on) {
    if (on) page.setAttribute("data-offline", "");
    else page.removeAttribute("data-offline");
  }

  function poll() {
    timer = null;
    var url = statusUrl + "?version=" + version;
    fetch(url, { cache: "no-store", credentials: "omit", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (r.status === 404) return { state: "failed" };
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (s) {
        offline(false);
        delay = 1000;
        if (typeof s.version === "number") version = s.version;
        if (!settle(s.state)) timer = setTimeout(poll, delay);
      })
      .catch(function () {
        offline(true);
        delay = Math.min(delay * 2, 15000);
        timer = setTimeout(poll, delay);
      });
  }

  function listen() {
    try {
      stream = new EventSource(eventsUrl);
    } catch (e) {
      stream = null;
      poll();
      return;
    }
    stream.addEventListener("state", function (ev) {
      offline(false);
      var s;
      try { s = JSON.parse(ev.data); } catch (e) { return; }
      if (typeof s.version === "number") version = s.version;
      settle(s.state);
    });
    stream.onerror = function () {
      /* The browser retries an open stream by itself; a refused one is
         closed for good: then ask for the status instead. */
      if (stream && stream.readyState === 2) {
        stream = null;
        if (!timer) poll();
      }
    };
  }

  function tick() {
    var el = document.getElementById("time-left");
    if (!el || page.getAttribute("data-state") !== "pending") return;
    var s = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    var m = Math.floor(s / 60), r = s % 60;
    el.textContent = m + ":" + (r < 10 ? "0" : "") + r;
    setTimeout(tick, 1000);
  }

  if (settle(page.getAttribute("data-state"))) return;
  tick();
  if (eventsUrl && window.EventSource) listen();
  else timer = setTimeout(poll, delay);
})();
