// Relay console: the little behaviour htmx does not cover.
(function () {
  "use strict";
  // A <select data-fill="ID"> copies the chosen option's data-event into
  // the textarea with that id (event tester samples).
  document.addEventListener("change", function (e) {
    var sel = e.target.closest ? e.target.closest("select[data-fill]") : null;
    if (!sel) return;
    var opt = sel.options[sel.selectedIndex];
    var target = document.getElementById(sel.getAttribute("data-fill"));
    if (opt && target && opt.getAttribute("data-event")) {
      target.value = opt.getAttribute("data-event");
    }
  });
  // A <select data-reload="param"> reloads the page with that query
  // parameter set to the choice (the event tester's destination: its
  // settings and mapping are the destination type's own).
  document.addEventListener("change", function (e) {
    var sel = e.target.closest ? e.target.closest("select[data-reload]") : null;
    if (!sel) return;
    var u = new URL(window.location.href);
    u.searchParams.set(sel.getAttribute("data-reload"), sel.value);
    window.location.assign(u.toString());
  });
})();
