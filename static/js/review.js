/* Tribunal edit review (issue 11): A / R / F choose accept / reject / fix, Enter submits, F opens
 * the fix box (prefilled with the edit) and puts the cursor in it; Ctrl+Enter submits from there,
 * U undoes the last submission. Only sets the plain form fields: the form works without this
 * file, and the server validates whatever arrives. Model text is never inserted as HTML here.
 */
(function () {
  "use strict";
  if (window.tribunalReview) return; // loaded once even when both workbench pages include it
  window.tribunalReview = true;

  function form() { return document.getElementById("review-form"); }
  function fixBox() { var f = form(); return f && f.querySelector("[data-fix]"); }
  function chosen() { var r = form() && form().querySelector('input[name="edit_verdict"]:checked'); return r ? r.value : ""; }

  function showFix() {
    var box = fixBox();
    if (box) box.hidden = chosen() !== "fix";
  }
  function choose(value) {
    var input = form().querySelector('input[name="edit_verdict"][value="' + value + '"]');
    if (!input) return;
    input.checked = true;
    showFix();
    if (value === "fix") {
      var t = document.getElementById("edit_fix");
      if (t) { t.focus(); t.setSelectionRange(t.value.length, t.value.length); }
    } else {
      input.focus();
    }
  }
  function submit() {
    var f = form();
    if (f.requestSubmit) f.requestSubmit(); else f.submit();
  }
  function typing(el) {
    if (!el || !el.tagName) return false;
    var t = el.tagName.toLowerCase();
    return t === "textarea" || t === "select" || (t === "input" && /^(text|search|number|email|password)$/.test(el.type || "text"));
  }

  document.addEventListener("keydown", function (e) {
    if (!form()) return;
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); submit(); return; }
    if (typing(e.target) || e.ctrlKey || e.metaKey || e.altKey) return;
    var key = e.key.toLowerCase();
    if (key === "a") { e.preventDefault(); choose("accept"); }
    else if (key === "r") { e.preventDefault(); choose("reject"); }
    else if (key === "f") { e.preventDefault(); choose("fix"); }
    else if (key === "z") {  // undo: Z, as on the judge workbench
      var undo = document.querySelector('[data-testid="undo"]');
      if (undo) { e.preventDefault(); undo.click(); }
    }
    else if (e.key === "Enter" && !(e.target.tagName === "BUTTON" || e.target.tagName === "A")) {
      e.preventDefault(); submit();
    }
  });
  document.addEventListener("change", function (e) {
    if (e.target && e.target.name === "edit_verdict") showFix();
  });
  /* htmx: show the re-rendered form on 409 (stale) and 422 (invalid) too. */
  document.addEventListener("htmx:beforeSwap", function (e) {
    var s = e.detail.xhr.status;
    if (s === 409 || s === 422) { e.detail.shouldSwap = true; e.detail.isError = false; }
  });
  function start() {
    if (!form()) return;
    showFix();
    if (chosen() === "fix" && document.querySelector(".wb-errors")) { var t = document.getElementById("edit_fix"); if (t) t.focus(); }
    document.documentElement.dataset.reviewReady = String(Date.now());
  }
  document.addEventListener("htmx:afterSettle", start);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
