// Posthorn console: the little behaviour htmx does not cover. Loaded with
// defer from the page's own origin (the CSP allows no inline script).
"use strict";

// A detail fragment swapped into #dialog opens as a modal dialog; its
// <form method="dialog"> closes it without script.
document.addEventListener("htmx:afterSwap", function (ev) {
  var target = ev.detail && ev.detail.target;
  if (!target || target.id !== "dialog") {
    return;
  }
  var dlg = target.querySelector("dialog");
  if (dlg && !dlg.open && typeof dlg.showModal === "function") {
    dlg.showModal();
  }
});
