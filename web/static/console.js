// The console's own script (issue 14): length hints that follow the typing in the
// campaign editor, and live progress of a send from Server-Sent Events. No framework, no
// CDN. Without it the hints show the saved lengths and the progress page the numbers at
// load, with a "Refresh" link.
(function () {
  "use strict";
  document.querySelectorAll("p[data-for]").forEach(function (hint) {
    var input = document.getElementById(hint.getAttribute("data-for"));
    if (!input) { return; }
    input.addEventListener("input", function () {
      var n = input.value.trim().length;
      var low = Number(hint.getAttribute("data-low"));
      var high = Number(hint.getAttribute("data-high"));
      var fix = n < low ? hint.getAttribute("data-short") : n > high ? hint.getAttribute("data-long") : "";
      hint.textContent = n + " characters; " + hint.getAttribute("data-advice") + (fix ? "; " + fix : "");
      hint.className = "hint " + (fix ? "hint-warn" : "hint-ok");
    });
  });
}());

(function () {
  "use strict";
  var box = document.getElementById("progress");
  if (!box || !window.EventSource) { return; }
  var bar = document.getElementById("progress-bar");
  var source = new EventSource(box.getAttribute("data-stream"));

  function show(data) {
    box.querySelectorAll("[data-field]").forEach(function (el) {
      var name = el.getAttribute("data-field");
      if (name === "note") { return; }
      var value = name === "percent" ? Number(data.percent).toFixed(1) : data[name];
      el.textContent = value === null || value === undefined ? "\u2014" : String(value);
    });
    if (bar) { bar.value = data.percent; bar.textContent = data.percent + "%"; }
  }

  source.addEventListener("progress", function (event) { show(JSON.parse(event.data)); });
  source.addEventListener("done", function (event) {
    var data = JSON.parse(event.data);
    show(data);
    source.close();
    var note = box.querySelector("[data-field=note]");
    if (note) { note.textContent = "Finished."; }
    var report = document.getElementById("report-link");
    if (report) { report.hidden = false; }
    box.setAttribute("data-finished", "true");
  });
}());

// A form is sent once: a second click (or Enter) while the first is on its way is
// ignored, so "Duplicate" or "Add endpoint" clicked twice does it once. Coming back
// to the page (the browser's Back) lets its forms be sent again.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if ((form.getAttribute("method") || "").toLowerCase() !== "post") { return; }
    if (form.getAttribute("data-sent") === "yes") { event.preventDefault(); return; }
    form.setAttribute("data-sent", "yes");
  });
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[data-sent]").forEach(function (form) {
      form.removeAttribute("data-sent");
    });
  });
}());
