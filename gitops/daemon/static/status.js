// The status page without a reload: polls the JSON API and updates the rows in place (text only,
// never HTML, so nothing from the API is interpreted); shows times as "12 s ago".
(function () {
  "use strict";
  var POLL_MS = 2000;
  function ago(iso) {
    var s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (isNaN(s)) return iso;
    if (s < 90) return s + " s ago";
    if (s < 5400) return Math.round(s / 60) + " min ago";
    if (s < 129600) return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " d ago";
  }
  function times() {
    document.querySelectorAll("time[datetime]").forEach(function (t) {
      t.title = t.getAttribute("datetime");
      t.textContent = ago(t.getAttribute("datetime"));
    });
  }
  function badge(el, value) {
    el.textContent = value || "Unknown";
    el.className = "badge b-" + (value || "unknown").toLowerCase();
  }
  function revision(td, app) {
    var rev = app.revision || "";
    td.textContent = "";
    if (!rev) { var m = document.createElement("span"); m.className = "muted"; m.textContent = "-"; td.appendChild(m); return; }
    var code = document.createElement("code");
    code.textContent = rev.slice(0, 12);
    code.title = rev;
    if (app.revision_url) {
      var a = document.createElement("a");
      a.href = app.revision_url; a.title = rev; a.appendChild(code); td.appendChild(a);
    } else { td.appendChild(code); }
  }
  function update(data) {
    var rows = document.querySelectorAll("tr[data-app]");
    var apps = data.apps || [];
    if (rows.length !== apps.length) { location.reload(); return; }
    for (var i = 0; i < apps.length; i++) {
      var app = apps[i], row = rows[i];
      if (row.getAttribute("data-app") !== app.app) { location.reload(); return; }
      row.querySelector('[data-field="backend"]').textContent = app.backend || "";
      row.querySelector('[data-field="target"]').textContent = app.target || "";
      revision(row.querySelector('[data-field="revision"]'), app);
      badge(row.querySelector('[data-field="sync"]'), app.sync);
      badge(row.querySelector('[data-field="health"]'), app.health);
      row.querySelector('[data-field="result"]').textContent = app.result || "-";
      var t = row.querySelector('[data-field="last_reconcile"]');
      if (app.last_reconcile) { t.setAttribute("datetime", app.last_reconcile); } else { t.removeAttribute("datetime"); t.textContent = "never"; }
      row.querySelector('[data-field="next_in_seconds"]').textContent = "in " + Math.round(app.next_in_seconds || 0) + " s";
      var notes = document.querySelector('tr[data-notes="' + CSS.escape(app.app) + '"]');
      var list = notes.querySelector('[data-field="notes"]');
      list.textContent = "";
      (app.notes || []).forEach(function (n) { var li = document.createElement("li"); li.textContent = n; list.appendChild(li); });
      notes.hidden = !(app.notes || []).length;
    }
    document.querySelectorAll("[data-count]").forEach(function (el) {
      var rule = el.getAttribute("data-count").split("=");
      el.textContent = String(apps.filter(function (a) { return a[rule[0]] === rule[1]; }).length);
    });
    var banner = document.querySelector(".banner");
    if (banner) {
      banner.textContent = "";
      [["repository: ", data.repository_error], ["", data.config_error], ["", data.signature_error]].forEach(function (e) {
        if (!e[1]) return;
        var p = document.createElement("p"); p.className = "alert"; p.textContent = e[0] + e[1]; banner.appendChild(p);
      });
    }
    times();
    document.documentElement.setAttribute("data-updated", String(Date.now()));
  }
  function poll(url) {
    fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) update(data); })
      .catch(function () { /* the daemon restarts: try again at the next tick */ })
      .then(function () { setTimeout(function () { poll(url); }, POLL_MS); });
  }
  document.addEventListener("DOMContentLoaded", function () {
    times();
    setInterval(times, 1000);
    var main = document.querySelector("main[data-poll]");
    if (main) setTimeout(function () { poll(main.getAttribute("data-poll")); }, POLL_MS);
  });
})();
