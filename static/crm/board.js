// The daily board (templates/leads/board.html).
(function () {
  // The manager's rep picker opens the chosen board (a button does without JS).
  document.querySelectorAll("select[data-submit-on-change]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.requestSubmit(); });
  });

  // Sections: collapsed ones are remembered in this browser.
  var KEY = "crm.board.collapsed";
  var collapsed = [];
  try { collapsed = JSON.parse(localStorage.getItem(KEY) || "[]"); } catch (e) { collapsed = []; }
  document.querySelectorAll("details[data-board-section]").forEach(function (section) {
    var name = section.dataset.boardSection;
    if (collapsed.indexOf(name) !== -1) section.open = false;
    section.addEventListener("toggle", function () {
      collapsed = collapsed.filter(function (n) { return n !== name; });
      if (!section.open) collapsed.push(name);
      try { localStorage.setItem(KEY, JSON.stringify(collapsed)); } catch (e) { /* private mode */ }
    });
  });

  // The rank's breakdown: its one line on hover (the item's title), the table on focus and
  // on tap or click (pinned until clicked again), in the flow below the item's buttons.
  document.querySelectorAll(".board-rank > button[aria-controls]").forEach(function (toggle) {
    var box = document.getElementById(toggle.getAttribute("aria-controls"));
    if (!box) return;
    function show(open) {
      box.hidden = !open;
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    }
    toggle.addEventListener("click", function () {
      if (toggle.dataset.pinned) { delete toggle.dataset.pinned; show(false); }
      else { toggle.dataset.pinned = "1"; show(true); }
    });
    toggle.addEventListener("focus", function () { show(true); });
    toggle.addEventListener("blur", function () { if (!toggle.dataset.pinned) show(false); });
    toggle.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { delete toggle.dataset.pinned; show(false); }
    });
  });

  // The counts in the header filter the list.
  var list = document.querySelector("[data-testid=board-list]");
  var empty = document.querySelector("[data-testid=board-filter-empty]");
  document.querySelectorAll(".board-filter").forEach(function (button) {
    button.addEventListener("click", function () {
      var wanted = button.dataset.filter;
      document.querySelectorAll(".board-filter").forEach(function (b) {
        var on = b === button;
        b.setAttribute("aria-pressed", on ? "true" : "false");
        b.classList.toggle("active", on);
      });
      if (!list) return;
      var shown = 0;
      list.querySelectorAll(".board-item").forEach(function (item) {
        var match = !wanted || item.dataset.kind === wanted || item.dataset.group === wanted || (wanted === "overdue" && item.dataset.overdue === "1");
        item.classList.toggle("d-none", !match);
        shown += match ? 1 : 0;
      });
      if (empty) empty.classList.toggle("d-none", shown > 0);
    });
  });

  // A form loaded in place gets the keyboard's focus; an item whose verdict or follow-up
  // was saved is marked done.
  document.body.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    if (target && target.classList && target.classList.contains("board-form")) {
      var first = target.querySelector("input:not([type=hidden]):not([disabled]), select, textarea, button");
      if (first) first.focus();
    }
  });
  document.body.addEventListener("htmx:afterRequest", function (event) {
    var detail = event.detail;
    if (!detail.xhr || detail.xhr.status >= 300) return;
    if (!detail.requestConfig || detail.requestConfig.verb !== "post") return;
    var item = detail.elt && detail.elt.closest ? detail.elt.closest(".board-item") : null;
    if (item) item.classList.add("board-item-done");
  });
})();
