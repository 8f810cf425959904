// Herald digest pages: move buttons for the stories on the compose page,
// and live progress on a digest's page. Both pages work without it: the
// order is a number per story, and the progress is rendered by the server.
(function () {
  "use strict";

  // Compose: choosing another kind shows the stories waiting for that kind.
  document.querySelectorAll("select[data-autosubmit]").forEach(function (sel) {
    sel.addEventListener("change", function () { sel.form.submit(); });
  });

  var table = document.getElementById("compose-stories");
  if (table) orderable(table);
  var progress = document.getElementById("progress");
  if (progress && progress.hasAttribute("data-live")) watch(progress);

  // orderable adds up/down buttons to each story row. The rows' order on
  // screen and the position numbers are kept the same: a move renumbers
  // the rows, and a typed number moves its row.
  function orderable(table) {
    var body = table.tBodies[0];
    var head = table.tHead.rows[0];
    var th = document.createElement("th");
    th.scope = "col";
    th.textContent = "Move";
    head.insertBefore(th, head.cells[2]);
    var live = document.createElement("p");
    live.className = "visually-hidden";
    live.setAttribute("aria-live", "polite");
    table.parentNode.insertBefore(live, table);
    Array.prototype.forEach.call(body.rows, function (row) {
      var title = row.querySelector(".story-title").textContent;
      var cell = row.insertCell(2);
      cell.className = "nowrap";
      cell.appendChild(moveButton("↑", "Move “" + title + "” up", "up"));
      cell.appendChild(document.createTextNode(" "));
      cell.appendChild(moveButton("↓", "Move “" + title + "” down", "down"));
    });
    body.addEventListener("click", function (e) {
      var b = e.target.closest("button[data-move]");
      if (!b) return;
      var row = b.closest("tr");
      if (b.getAttribute("data-move") === "up" && row.previousElementSibling) {
        body.insertBefore(row, row.previousElementSibling);
      } else if (b.getAttribute("data-move") === "down" && row.nextElementSibling) {
        body.insertBefore(row.nextElementSibling, row);
      }
      renumber();
      b.focus();
      live.textContent = "“" + row.querySelector(".story-title").textContent + "” is now number " + (row.sectionRowIndex + 1) + ".";
    });
    body.addEventListener("change", function (e) {
      if (!e.target.classList.contains("order-input")) return;
      var n = parseInt(e.target.value, 10);
      if (isNaN(n)) return;
      // Rows with the same number keep their order; the typed row goes first.
      var rows = Array.prototype.slice.call(body.rows).map(function (r, i) {
        var v = parseInt(r.querySelector(".order-input").value, 10);
        return { row: r, key: isNaN(v) ? 1e9 : v, typed: r.contains(e.target) ? 0 : 1, i: i };
      });
      rows.sort(function (a, b) { return a.key - b.key || a.typed - b.typed || a.i - b.i; });
      rows.forEach(function (r) { body.appendChild(r.row); });
      renumber();
      e.target.focus();
    });
    function renumber() {
      Array.prototype.forEach.call(body.rows, function (row, i) {
        row.querySelector(".order-input").value = String(i + 1);
      });
    }
  }

  function moveButton(text, label, dir) {
    var b = document.createElement("button");
    b.type = "button";
    b.textContent = text;
    b.setAttribute("aria-label", label);
    b.setAttribute("data-move", dir);
    return b;
  }

  // watch polls the digest's progress every second and updates the numbers
  // and the bar. When the status changes (the send starts, pauses or
  // finishes) the page reloads, so that its actions and results match.
  function watch(el) {
    var url = el.getAttribute("data-progress-url");
    var initial = el.getAttribute("data-status");
    var meta = document.querySelector('meta[name="csrf-token"]');
    var token = meta ? meta.getAttribute("content") : "";
    var samples = [];
    var lastAnnounced = 0;
    var stopped = false;

    function tick() {
      fetch(url, { headers: { "Accept": "application/json", "X-CSRF-Token": token }, credentials: "same-origin", cache: "no-store" })
        .then(function (r) {
          if (!r.ok) throw new Error("progress: " + r.status);
          return r.json();
        })
        .then(update)
        .catch(function () { /* a missed poll is retried on the next tick */ })
        .then(function () { if (!stopped) setTimeout(tick, 1000); });
    }

    function update(p) {
      var now = Date.now();
      // The rate is taken over the last ten seconds of samples, which
      // follows the send better than the average since it started.
      samples.push({ t: now, n: p.sent + p.failed });
      while (samples.length > 2 && now - samples[0].t > 10000) samples.shift();
      var rate = p.rate;
      var first = samples[0], last = samples[samples.length - 1];
      if (last.t - first.t >= 2000) rate = (last.n - first.n) / ((last.t - first.t) / 1000);
      if (p.status !== "sending") rate = 0;

      set("sent", p.sent);
      set("failed", p.failed);
      set("skipped", p.skipped);
      set("pending", p.pending);
      set("done", p.done);
      set("total", p.total);
      set("percent", p.percent);
      set("rate", rate > 0 ? rate.toFixed(1) + " /s" : "–");
      var eta = "–";
      if (p.pending === 0 && p.total > 0) eta = "done";
      else if (rate > 0) eta = duration(p.pending / rate);
      set("eta", eta);
      set("elapsed", duration(p.elapsed_seconds));
      var bar = el.querySelector('[data-field="bar"]');
      if (bar) {
        bar.setAttribute("aria-valuenow", String(p.percent));
        bar.setAttribute("aria-valuetext", p.percent + "% done: " + p.done + " of " + p.total);
        bar.firstElementChild.style.width = p.percent + "%";
      }
      document.querySelectorAll('.badge[data-field="status"]').forEach(function (b) {
        b.textContent = p.status;
        b.className = "badge s-" + p.status;
      });

      var changed = p.status !== initial;
      if (changed || now - lastAnnounced >= 10000) {
        lastAnnounced = now;
        var say = p.percent + "% done: " + p.sent + " sent, " + p.failed + " failed, " + p.pending + " remaining.";
        if (changed) say = "The digest is now " + p.status + ". " + say;
        set("announce", say);
      }
      if (changed) {
        stopped = true;
        var done = el.querySelector('[data-field="finished"]');
        if (done && (p.status === "sent" || p.status === "cancelled")) done.hidden = false;
        setTimeout(function () { window.location.reload(); }, 1500);
      }
    }

    function set(name, value) {
      el.querySelectorAll('[data-field="' + name + '"]').forEach(function (n) { n.textContent = String(value); });
    }

    setTimeout(tick, 1000);
  }

  // duration says a number of seconds the way the server does.
  function duration(s) {
    s = Math.round(s);
    if (s < 1) return "under a second";
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }
})();
