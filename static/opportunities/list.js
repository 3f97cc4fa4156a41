// The opportunity table (templates/opportunities/list.html): "All on this page" ticks or
// clears every row's checkbox for the bulk move (without this script, rows are ticked
// one by one).
(function () {
  "use strict";
  var all = document.querySelector("[data-select-page]");
  if (!all) return;
  var label = document.querySelector("[data-select-page-label]");
  var boxes = document.querySelectorAll('input[type=checkbox][name=ids][form="bulk-form"]');
  if (!boxes.length) return;
  all.hidden = false;
  if (label) label.hidden = false;

  function sync() {
    var ticked = Array.prototype.filter.call(boxes, function (box) { return box.checked; });
    all.checked = ticked.length === boxes.length;
    all.indeterminate = ticked.length > 0 && ticked.length < boxes.length;
  }

  all.addEventListener("change", function () {
    boxes.forEach(function (box) { box.checked = all.checked; });
  });
  boxes.forEach(function (box) { box.addEventListener("change", sync); });
  sync();
})();
