// Copy buttons: any <button data-copy="text">. They stay hidden without JavaScript (the text is
// on the page to select by hand), and work in content HTMX swaps in, hence one listener on the
// document rather than one per button.
(function () {
  "use strict";

  function reveal(root) {
    root.querySelectorAll("button[data-copy][hidden]").forEach(function (button) {
      button.hidden = false;
    });
  }

  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } finally { document.body.removeChild(area); }
    return Promise.resolve();
  }

  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () { return fallbackCopy(text); });
    }
    return fallbackCopy(text);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy]");
    if (!button) { return; }
    var label = button.dataset.label || button.textContent;
    button.dataset.label = label;
    copy(button.dataset.copy).then(function () {
      button.textContent = "Copied";
      window.setTimeout(function () { button.textContent = label; }, 1500);
    });
  });

  // A poll that finds nothing changed is answered 304 with no body (the fleet table sends its
  // version as If-None-Match): keep what is on the page instead of swapping in nothing.
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.xhr && event.detail.xhr.status === 304) { event.detail.shouldSwap = false; }
  });

  // The create form: a shared database is the host's, so "Data from" is off while Shared is
  // chosen, showing the host (a disabled select is not posted; the server then uses the
  // host). Without JavaScript the select stays on and the server refuses another source.
  function syncSource(form) {
    var select = form && form.querySelector("select[data-shared-uses]");
    if (!select) { return; }
    var shared = form.querySelector("input[name=db_mode][value=shared]");
    var off = Boolean(shared && shared.checked);
    if (off && !select.disabled) {
      select.dataset.chosen = select.value;
      select.value = select.dataset.sharedUses;
    } else if (!off && select.disabled && select.dataset.chosen) {
      select.value = select.dataset.chosen;
    }
    select.disabled = off;
  }

  document.addEventListener("change", function (event) {
    if (event.target.name === "db_mode") { syncSource(event.target.form); }
  });

  // Once the name preview answers for what is typed now, the name's refusal shown for what
  // was posted is out of date, and would say the same thing twice.
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    if (!target || target.id !== "name-preview") { return; }
    var stale = document.getElementById("name-error");
    if (!stale) { return; }
    stale.closest(".field").classList.remove("has-error");
    stale.remove();
  });

  document.addEventListener("DOMContentLoaded", function () {
    reveal(document);
    document.querySelectorAll("form").forEach(syncSource);
  });
  document.addEventListener("htmx:afterSwap", function (event) { reveal(event.detail.elt || document); });
  document.addEventListener("htmx:load", function (event) { reveal(event.detail.elt || document); });
})();
