// Keeps the dashboard's figures current without reloading: polls the data
// every data-refresh seconds, writes numbers and lists as text (never as
// markup), recolours the map's cells, and says when the figures are stale.
(function () {
  "use strict";
  var root = document.getElementById("dash");
  if (!root) return;
  var every = Math.max(5, parseInt(root.dataset.refresh, 10) || 30) * 1000;
  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (m, k) { return k in values ? String(values[k]) : m; });
  }
  function set(id, value) {
    var e = document.getElementById(id);
    if (e) e.textContent = String(value);
  }
  function clock(ms) {
    var d = new Date(ms);
    return d.toLocaleString(document.documentElement.lang || undefined);
  }
  function list(id, items, text) {
    var ul = document.getElementById(id);
    if (!ul) return;
    while (ul.firstChild) ul.removeChild(ul.firstChild);
    items.forEach(function (it) {
      var li = document.createElement("li");
      li.textContent = text(it);
      ul.appendChild(li);
    });
  }
  var lastAt = parseInt((document.getElementById("dash-updated") || {}).dataset ?
    document.getElementById("dash-updated").dataset.at : "0", 10) || Date.now();
  function paint(d) {
    set("dash-coverage", d.coverage_windows ? (100 * d.coverage_covered / d.coverage_windows).toFixed(1) + "%" : "—");
    set("dash-on-post", d.on_post.length);
    set("dash-off-post", d.off_post.length);
    set("dash-reported", d.totals.reported);
    set("dash-tasks-due", d.tasks_due);
    set("dash-tasks-late", d.tasks_late);
    list("dash-off-list", d.off_post, function (n) { return n; });
    var rows = document.querySelectorAll("#dash-classes tr[data-class]");
    var byClass = {};
    d.classes.concat([d.totals]).forEach(function (c) { byClass[c.class] = c; });
    Array.prototype.forEach.call(rows, function (tr) {
      var c = byClass[tr.dataset.class];
      var cells = tr.querySelectorAll("td");
      if (!c || cells.length < 5) return;
      cells[1].textContent = c.reported; cells[2].textContent = c.registered;
      cells[3].textContent = c.dispatched; cells[4].textContent = c.closed;
    });
    d.cells.forEach(function (c) {
      var p = document.querySelector("svg#map path.cell[data-code='" + CSS.escape(c.code) + "']");
      if (p) { p.setAttribute("fill", c.fill); p.setAttribute("data-covered", c.covered); }
    });
    lastAt = d.computed_at_ms;
    var u = document.getElementById("dash-updated");
    u.dataset.at = d.computed_at_ms;
    u.className = "";
    u.textContent = fill(root.dataset.updatedText, { time: clock(d.computed_at_ms) });
    root.setAttribute("data-refreshed", String((parseInt(root.getAttribute("data-refreshed"), 10) || 0) + 1));
  }
  function tick() {
    fetch(root.dataset.src, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(paint)
      .catch(function () {
        var u = document.getElementById("dash-updated");
        u.className = "late";
        u.textContent = fill(root.dataset.staleText, { time: clock(lastAt) });
      })
      .then(function () { setTimeout(tick, every); });
  }
  setTimeout(tick, every);
  // A test or an operator can ask for a refresh now.
  window.fieldDashboardRefresh = function () { return fetch(root.dataset.src, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(paint); };
})();
