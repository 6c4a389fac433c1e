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

  /* The card last focused: Esc in a picker, the rationale or the skip/flag controls returns there. */
  var lastCard = null;
  document.addEventListener("focusin", function (e) {
    var c = e.target.closest && e.target.closest("#responses > .response-card");
    if (c) lastCard = c;
    var p = e.target.closest && e.target.closest("[data-picker]");
    // A click elsewhere: fold the open picker only once the click is over. Folding it on mousedown
    // shifts what is below (the cards stand in columns on wide screens) and the click lands nowhere.
    if (!pointerDown) closePickersBut(p);
    if (p) { p.classList.add("picking"); refreshPicker(p); }
  });
  var pointerDown = false;
  function closePickersBut(p) {
    document.querySelectorAll("[data-picker].picking").forEach(function (x) { if (x !== p) x.classList.remove("picking"); });
  }
  document.addEventListener("pointerdown", function () { pointerDown = true; }, true);
  document.addEventListener("pointerup", function () {
    pointerDown = false;
    setTimeout(function () {
      var a = document.activeElement;
      closePickersBut(a && a.closest ? a.closest("[data-picker]") : null);
    }, 0);
  }, true);
  function backToCard() {
    var c = lastCard && document.body.contains(lastCard) ? lastCard : cards()[0];
    if (c) focusCard(c);
    else { var f = document.getElementById("judgment"); if (f) { f.setAttribute("tabindex", "-1"); f.focus(); } }
  }

  /* --- Category pickers (type to filter; categories go with "unsafe" only) --------------------- */
  function pickerItems(p) { return Array.prototype.slice.call(p.querySelectorAll("[data-picker-list] > li")); }
  function safetyBox(p) { return p.closest("[data-safety]"); }
  function labelOf(box) {
    var checked = box && box.querySelector('input[type=radio]:checked');
    return checked ? checked.value : "";
  }
  /* Only what the rule allows: the categories are live only while the label is "unsafe". */
  function syncPicker(p) {
    var allowed = labelOf(safetyBox(p)) === "unsafe";
    p.classList.toggle("disabled", !allowed);
    pickerItems(p).forEach(function (li) {
      var cb = li.querySelector("input[type=checkbox]");
      cb.disabled = !allowed;
      li.classList.toggle("chosen", cb.checked);
    });
    /* Open where there is something to see or to fix: chosen categories, or an error on this card. */
    if (allowed && (p.querySelector("input[type=checkbox]:checked") || p.closest(".has-error"))) p.open = true;
  }
  function refreshPicker(p) {
    var filter = p.querySelector("[data-picker-filter]");
    var words = (filter ? filter.value : "").toLowerCase().split(/\s+/).filter(Boolean);
    var active = p.querySelector("li.active");
    var first = null;
    pickerItems(p).forEach(function (li) {
      var hay = li.dataset.search || "";
      var match = words.every(function (w) { return hay.indexOf(w) !== -1; });
      li.classList.toggle("match", match);
      li.hidden = !match;
      if (match && !first) first = li;
    });
    if (!active || active.hidden) {
      if (active) active.classList.remove("active");
      if (first) first.classList.add("active");
    }
    var empty = p.querySelector("[data-picker-empty]");
    if (empty) empty.hidden = !!first;
  }
  function openPicker(p) {
    if (!p) return;
    syncPicker(p);
    if (p.classList.contains("disabled")) return;
    p.open = true;
    var filter = p.querySelector("[data-picker-filter]");
    if (filter) { filter.hidden = false; filter.value = ""; refreshPicker(p); filter.focus(); }
  }
  function moveActive(p, step) {
    var visible = pickerItems(p).filter(function (li) { return !li.hidden; });
    if (!visible.length) return;
    var i = visible.indexOf(p.querySelector("li.active"));
    visible.forEach(function (li) { li.classList.remove("active"); });
    var next = visible[Math.max(0, Math.min(visible.length - 1, i + step))];
    next.classList.add("active");
    next.scrollIntoView({ block: "nearest" });
  }
  function pickActive(p) {
    var li = p.querySelector("li.active:not([hidden])");
    var cb = li && li.querySelector("input[type=checkbox]");
    if (!cb || cb.disabled) return;
    cb.checked = !cb.checked;
    cb.dispatchEvent(new Event("change", { bubbles: true }));
    var filter = p.querySelector("[data-picker-filter]");
    if (filter) filter.value = "";
    refreshPicker(p);
    syncPicker(p);
  }

  /* --- Principles (filterable) -------------------------------------------------------------- */
  function principleLabels() { return Array.prototype.slice.call(document.querySelectorAll("[data-principles] label.principle")); }
  function filterPrinciples(q) {
    var words = q.toLowerCase().split(/\s+/).filter(Boolean);
    principleLabels().forEach(function (l) {
      var hay = l.dataset.search || "";
      l.hidden = !words.every(function (w) { return hay.indexOf(w) !== -1; });
    });
  }
  function openPrinciples() {
    var f = document.querySelector("[data-principle-filter]");
    if (!f) return;
    f.hidden = false; f.value = ""; filterPrinciples(""); f.focus();
    f.scrollIntoView({ block: "nearest" });
  }

  function setConfidence(n) { checkRadio("confidence", String(n)); }

  function submitForm(form) { if (form.requestSubmit) form.requestSubmit(); else form.submit(); }

  document.addEventListener("keydown", function (e) {
    var t = e.target;
    /* Inside a category filter: arrows choose, Enter picks, Esc leaves. */
    if (t && t.matches && t.matches("[data-picker-filter]")) {
      var p = t.closest("[data-picker]");
      if (e.key === "ArrowDown" || e.key === "ArrowUp") { e.preventDefault(); moveActive(p, e.key === "ArrowDown" ? 1 : -1); return; }
      if (e.key === "Enter" && !(e.ctrlKey || e.metaKey)) { e.preventDefault(); pickActive(p); return; }
      if (e.key === "Escape") {
        e.preventDefault(); t.value = ""; refreshPicker(p); p.classList.remove("picking");
        if (p.closest(".prompt-safety")) { var ps = document.getElementById("prompt-safety"); if (ps) ps.focus(); } else backToCard();
        return;
      }
    }
    if (t && t.matches && t.matches("[data-principle-filter]")) {
      if (e.key === "Enter" && !(e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        var hit = principleLabels().filter(function (l) { return !l.hidden; })[0];
        if (hit && t.value.trim()) { var cb = hit.querySelector("input"); cb.checked = !cb.checked; }
        t.value = ""; filterPrinciples("");
        return;
      }
      if (e.key === "Escape") { e.preventDefault(); t.value = ""; filterPrinciples(""); backToCard(); return; }
    }
    /* Skip and flag: choose with the arrows, Enter sends; Esc goes back to the item. */
    if (t && t.matches && t.matches("[data-skip-reason], [data-skip-note], [data-flag-kind]")) {
      if (e.key === "Enter") { e.preventDefault(); submitForm(t.form); return; }
      if (e.key === "Escape") { e.preventDefault(); backToCard(); return; }
    }
    if (t && t.id === "rationale" && e.key === "Escape") { e.preventDefault(); backToCard(); return; }

    var form = document.getElementById("judgment");
    if (e.key === "Escape") { overlay(false); return; }
    if ((e.ctrlKey || e.metaKey) && e.key === "Enter" && form) {
      e.preventDefault();
      submitForm(form);
      return;
    }
    if (typing(e.target) || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "?") { e.preventDefault(); overlay(); return; }
    if (e.key === "z" || e.key === "Z") {
      var undo = document.querySelector("[data-testid=undo]");
      if (undo) { e.preventDefault(); undo.click(); }
      return;
    }
    if (!form) return;
    var mode = (task() && task().dataset.mode) || "";
    var card = focused();
    var key = e.key.toLowerCase();

    /* Keys that work whatever is focused in the item. */
    if (e.shiftKey && /^Digit[1-5]$/.test(e.code || "")) { e.preventDefault(); setConfidence(e.code.slice(-1)); return; }
    if (e.shiftKey && (e.key === "S" || e.key === "C" || e.key === "U")) {
      var promptBox = document.getElementById("prompt-safety");
      if (!promptBox) return;
      e.preventDefault();
      var value = { S: "safe", C: "needs_caution", U: "unsafe" }[e.key];
      var radio = promptBox.querySelector('input[name=prompt_label][value="' + value + '"]');
      radio.checked = true;
      radio.dispatchEvent(new Event("change", { bubbles: true }));
      if (value === "unsafe") openPicker(promptBox.querySelector("[data-picker]")); else promptBox.focus();
      return;
    }
    if (key === "r" && !e.shiftKey) { var r = document.getElementById("rationale"); if (r) { e.preventDefault(); r.focus(); } return; }
    if (key === "p" && !e.shiftKey) { if (document.querySelector("[data-principle-filter]")) { e.preventDefault(); openPrinciples(); } return; }
    if (key === "x" && !e.shiftKey) { var sr = document.querySelector("[data-skip-reason]"); if (sr) { e.preventDefault(); sr.focus(); sr.scrollIntoView({ block: "nearest" }); } return; }
    if (key === "f" && !e.shiftKey) { var fk = document.querySelector("[data-flag-kind]"); if (fk) { e.preventDefault(); fk.focus(); fk.scrollIntoView({ block: "nearest" }); } return; }
    if (e.key === "/") {
      var inPrompt = document.activeElement && document.activeElement.closest && document.activeElement.closest(".prompt-safety");
      var target = inPrompt ? inPrompt.querySelector("[data-picker]") : (card && card.querySelector("[data-picker]"));
      if (target) { e.preventDefault(); openPicker(target); }
      return;
    }

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
    if (!card || e.shiftKey) return;
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
    else if (key === "u") { e.preventDefault(); setLabel(card, "unsafe"); openPicker(card.querySelector("[data-picker]")); }
  });

  /* A label change decides whether its categories are live (only for unsafe). */
  document.addEventListener("change", function (e) {
    var t = e.target;
    if (t && t.type === "radio" && /^(label-\d+|prompt_label)$/.test(t.name)) {
      var box = t.closest("[data-safety]");
      var p = box && box.querySelector("[data-picker]");
      if (p) { syncPicker(p); if (t.value === "unsafe") p.open = true; }
    }
    if (t && t.type === "checkbox" && t.closest && t.closest("[data-picker]")) { syncPicker(t.closest("[data-picker]")); }
    if (t && t.matches && t.matches("select[data-rank]")) { reorder(); }
  });
  document.addEventListener("input", function (e) {
    var t = e.target;
    if (t && t.matches && t.matches("[data-picker-filter]")) refreshPicker(t.closest("[data-picker]"));
    if (t && t.matches && t.matches("[data-principle-filter]")) filterPrinciples(t.value);
  });

  /* Drag to rank: the dragged card takes the rank of the place it is dropped; the cards that already
     had a rank keep their order (and ties) and move down to make room; unranked cards stay unranked. */
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
    var moved = dragged;
    moved.classList.remove("dragging");
    dragged = null;
    var rank = 0, prevOld = null;
    cards().forEach(function (c) {
      var old = rankOf(c);
      if (c === moved) { rank += 1; setRank(c, rank); prevOld = null; return; }
      if (old == null) return;  /* never read, never ranked: stays unranked */
      if (!(prevOld != null && old === prevOld)) rank += 1;  /* a tie stays a tie */
      setRank(c, rank);
      prevOld = old;
    });
    reorder();
    focusCard(moved);
  });

  document.addEventListener("click", function (e) {
    if (e.target.closest && e.target.closest("[data-close-shortcuts]")) overlay(false);
    var link = e.target.closest && e.target.closest("[data-error-target]");
    if (link) { e.preventDefault(); focusError(link.dataset.errorTarget); }
  });

  function focusError(id) {
    var el = document.getElementById(id);
    if (!el) return;
    if (!el.hasAttribute("tabindex") && !/^(input|textarea|select|button|a)$/i.test(el.tagName)) el.setAttribute("tabindex", "-1");
    el.scrollIntoView({ block: "center" });
    el.focus({ preventScroll: true });
  }

  /* htmx: show the re-rendered form on 409 (stale) and 422 (invalid) too, not only on 2xx. */
  document.addEventListener("htmx:beforeSwap", function (e) {
    var s = e.detail.xhr.status;
    if (s === 409 || s === 422) { e.detail.shouldSwap = true; e.detail.isError = false; }
  });
  document.addEventListener("htmx:afterSettle", function () { start(); });

  function start() {
    markTies();
    document.documentElement.classList.add("wb-js");
    document.querySelectorAll("[data-picker]").forEach(function (p) {
      var f = p.querySelector("[data-picker-filter]");
      if (f) f.hidden = false;
      syncPicker(p);
    });
    var pf = document.querySelector("[data-principle-filter]");
    if (pf) pf.hidden = false;
    var t = task();
    if (t) {
      var firstError = document.querySelector(".wb-errors [data-error-target]");
      var skipError = document.querySelector("[data-testid=skip-error], [data-testid=flag-error]");
      if (firstError) {
        /* After a refused submit: the first problem is scrolled to and focused (the banner lists all). */
        focusError(firstError.dataset.errorTarget);
      } else if (skipError) {
        var ctl = skipError.closest("form").querySelector("[data-skip-note], [data-flag-kind]");
        if (ctl) { ctl.scrollIntoView({ block: "center" }); ctl.focus({ preventScroll: true }); }
      } else {
        var first = cards()[0];
        if (first && !document.querySelector(".wb-stale")) first.focus({ preventScroll: false });
        window.scrollTo(0, 0);
      }
      document.documentElement.dataset.workbenchReady = "1";
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
