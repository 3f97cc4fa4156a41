// The hosted lead form (templates/leads/form.html).
// The industry remark only matters for "other": show it then (it stays visible without JS).
(function () {
  var wrap = document.getElementById("wrap_industry_remark");
  var radios = document.querySelectorAll('input[name="industry"]');
  if (!wrap || !radios.length) return;
  function sync() {
    var other = document.querySelector('input[name="industry"][value="other"]:checked');
    wrap.hidden = !other && !wrap.querySelector(".invalid-feedback");
  }
  radios.forEach(function (r) { r.addEventListener("change", sync); });
  sync();
})();
// After a rejected submit, take the visitor to the first field to fix.
(function () {
  var bad = document.querySelector(".lead-form .is-invalid");
  if (bad) bad.focus();
})();
