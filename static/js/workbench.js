/* Tribunal workbench: keyboard ranking, drag to reorder, pairwise keys, the "?" overlay.
 *
 * Everything here only sets the plain form fields (rank <select>s, radios); the form works
 * without this file, and the server validates whatever arrives. Model text is never inserted
 * as HTML by this script (it moves existing nodes and sets .value / .checked only).
 */
(function () {
  "use strict";

  function task() { return document.getElementById("task"); }
  function cards() { return Array.prototype.slice.call(document.querySelectorAll("#responses > .response-card")); }
  function rankSelect(card) { return card.querySelector("select[data-rank]"); }
  function rankOf(card) { var s = rankSelect(card); return s && s.value ? parseInt(s.value, 10) : null; }
  function setRank(card, n) {
    var s = rankSelect(card);
    if (!s) return;
    s.value = n == null ? "" : String(Math.min(n, s.options.length - 1));
  }

  /* Cards follow their ranks: ranked first by rank, unranked after, stable otherwise. */
  function reorder() {
    var list = document.getElementById("responses");
    if (!list) return;
    var cs = cards().map(function (c, i) { return { c: c, i: i, r: rankOf(c) }; });
    cs.sort(function (a, b) {
      if (a.r == null && b.r == null) return a.i - b.i;
      if (a.r == null) return 1;
      if (b.r == null) return -1;
      return a.r - b.r || a.i - b.i;
    });
    cs.forEach(function (x) { list.appendChild(x.c); });
    markTies();
  }

  function markTies() {
    var cs = cards();
    cs.forEach(function (c, i) {
      var prev = cs[i - 1];
      c.classList.toggle("tied", !!prev && rankOf(prev) != null && rankOf(prev) === rankOf(c));
      c.dataset.rank = rankOf(c) == null ? "" : String(rankOf(c));
    });
  }

  function focused() {
    var el = document.activeElement;
    return el && el.closest ? el.closest(".response-card") : null;
  }

  function focusCard(card) { if (card) { card.focus(); card.scrollIntoView({ block: "nearest" }); } }

  function nextUnranked(after) {
    var cs = cards();
    var start = cs.indexOf(after);
    for (var k = 1; k <= cs.length; k++) {
      var c = cs[(start + k) % cs.length];
      if (rankOf(c) == null) return c;
    }
    return null;
  }

  function setLabel(card, value) {
    var input = card && card.querySelector('input[type=radio][value="' + value + '"]');
    if (input) { input.checked = true; input.dispatchEvent(new Event("change", { bubbles: true })); }
  }

  function checkRadio(name, value) {
    var input = document.querySelector('#judgment input[name="' + name + '"][value="' + value + '"]');
    if (input) { input.checked = true; }
  }

  function overlay(show) {
    var o = document.getElementById("shortcuts");
    if (!o) return;
    o.hidden = show === undefined ? !o.hidden : !show;
    if (!o.hidden) { var b = o.querySelector("button"); if (b) b.focus(); }
  }

  function typing(el) {
    if (!el || !el.tagName) return false;
    var t = el.tagName.toLowerCase();
    return t === "textarea" || t === "select" || (t === "input" && /^(text|search|number|email|password)$/.test(el.type || "text"));
  }

  document.addEventListener("keydown", function (e) {
    var form = document.getElementById("judgment");
    if (e.key === "Escape") { overlay(false); return; }
    if ((e.ctrlKey || e.metaKey) && e.key === "Enter" && form) {
      e.preventDefault();
      if (form.requestSubmit) form.requestSubmit(); else form.submit();
      return;
    }
    if (typing(e.target) || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "?") { e.preventDefault(); overlay(); return; }
    if (!form) return;
    var mode = (task() && task().dataset.mode) || "";
    var card = focused();
    var key = e.key.toLowerCase();

    if (mode === "pairwise") {
      if (key === "a" || key === "b") { checkRadio("pair_choice", key); e.preventDefault(); }
      else if (key === "t") { checkRadio("pair_choice", "tie"); e.preventDefault(); }
      else if (key === "1" || key === "2" || key === "3") { checkRadio("pair_strength", key); e.preventDefault(); }
      return;
    }

    var cs = cards();
    if (key === "arrowdown" || key === "j" || key === "arrowup" || key === "k") {
      e.preventDefault();
      var i = card ? cs.indexOf(card) : -1;
      var down = key === "arrowdown" || key === "j";
      focusCard(cs[Math.max(0, Math.min(cs.length - 1, i + (down ? 1 : -1)))] || cs[0]);
      return;
    }
    if (!card) return;
    if (/^[1-9]$/.test(e.key) && rankSelect(card)) {
      e.preventDefault();
      setRank(card, parseInt(e.key, 10));
      reorder();
      focusCard(nextUnranked(card) || card);
    } else if (e.key === "=" && rankSelect(card)) {
      e.preventDefault();
      var above = cards()[cards().indexOf(card) - 1];
      if (above && rankOf(above) != null) {
        setRank(card, rankOf(above));
        reorder();
        focusCard(nextUnranked(card) || card);
      }
    } else if (key === "s") { e.preventDefault(); setLabel(card, "safe"); }
    else if (key === "c") { e.preventDefault(); setLabel(card, "needs_caution"); }
    else if (key === "u") { e.preventDefault(); setLabel(card, "unsafe"); }
  });

  /* Opening the category list when a label becomes unsafe. */
  document.addEventListener("change", function (e) {
    var t = e.target;
    if (t && t.type === "radio" && /^(label-\d+|prompt_label)$/.test(t.name)) {
      var box = t.closest("[data-safety]");
      var details = box && box.querySelector("details.categories");
      if (details && t.value === "unsafe") details.open = true;
    }
    if (t && t.matches && t.matches("select[data-rank]")) { reorder(); }
  });

  /* Drag to reorder: ranks follow the new order (1..N, no ties). */
  var dragged = null;
  document.addEventListener("dragstart", function (e) {
    var c = e.target.closest && e.target.closest("#responses > .response-card");
    if (!c) return;
    dragged = c;
    c.classList.add("dragging");
    e.dataTransfer.effectAllowed = "move";
    e.dataTransfer.setData("text/plain", c.dataset.response);
  });
  document.addEventListener("dragover", function (e) {
    if (!dragged) return;
    var over = e.target.closest && e.target.closest("#responses > .response-card");
    if (!over || over === dragged) return;
    e.preventDefault();
    var box = over.getBoundingClientRect();
    var before = e.clientY < box.top + box.height / 2;
    over.parentNode.insertBefore(dragged, before ? over : over.nextSibling);
  });
  document.addEventListener("drop", function (e) { if (dragged) e.preventDefault(); });
  document.addEventListener("dragend", function () {
    if (!dragged) return;
    dragged.classList.remove("dragging");
    dragged = null;
    cards().forEach(function (c, i) { setRank(c, i + 1); });
    markTies();
  });

  document.addEventListener("click", function (e) {
    if (e.target.closest && e.target.closest("[data-close-shortcuts]")) overlay(false);
  });

  /* htmx: show the re-rendered form on 409 (stale) and 422 (invalid) too, not only on 2xx. */
  document.addEventListener("htmx:beforeSwap", function (e) {
    var s = e.detail.xhr.status;
    if (s === 409 || s === 422) { e.detail.shouldSwap = true; e.detail.isError = false; }
  });
  document.addEventListener("htmx:afterSettle", function () { start(); });

  function start() {
    markTies();
    var t = task();
    if (t) {
      var first = cards()[0];
      if (first && !document.querySelector(".wb-stale, .wb-errors")) first.focus({ preventScroll: false });
      window.scrollTo(0, 0);
      document.documentElement.dataset.workbenchReady = "1";
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
