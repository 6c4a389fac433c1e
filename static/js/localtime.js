// Times in the reader's own time zone. The server writes <time datetime="ISO" data-local-time>HH:MM UTC</time>;
// without JavaScript that UTC text stays. With it, the text becomes the local clock time (and the
// date when it is not today), and the title keeps the UTC time. Runs on load and on every htmx swap.
(function () {
  "use strict";
  function localise(root) {
    root.querySelectorAll("time[data-local-time]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when.getTime())) return;
      var today = new Date();
      var sameDay = when.toDateString() === today.toDateString();
      var opts = { hour: "2-digit", minute: "2-digit" };
      if (!sameDay) { opts.month = "short"; opts.day = "numeric"; }
      el.textContent = when.toLocaleString([], opts);
      el.setAttribute("data-localised", "1");
    });
  }
  document.addEventListener("DOMContentLoaded", function () { localise(document); });
  document.addEventListener("htmx:load", function (e) { localise(e.target || document); });
})();
