// The CRM health self-test (templates/crm/self_test.html): the score out of 10 as a gauge,
// coloured by the page's bands, and the width of the bar under it. Sizes are set here:
// the content security policy refuses style attributes in the page.
(function () {
  var source = document.getElementById("selftest-gauge-data");
  if (!source) return;
  var data = JSON.parse(source.textContent);

  document.querySelectorAll(".selftest-bar[data-width]").forEach(function (bar) {
    bar.style.width = (parseFloat(bar.dataset.width) * 10) + "%";
  });

  var el = document.getElementById("selftest-gauge");
  if (!el || !window.echarts || data.score === null) {
    if (el) el.hidden = true;
    return;
  }
  el.style.height = "220px";
  var chart = echarts.init(el);
  chart.setOption({
    animation: false,
    series: [{
      type: "gauge",
      min: 0,
      max: 10,
      splitNumber: 10,
      radius: "95%",
      axisLine: {lineStyle: {width: 14, color: data.bands}},
      pointer: {width: 5},
      axisTick: {show: false},
      splitLine: {length: 14, lineStyle: {width: 1, color: "#fff"}},
      axisLabel: {distance: 18, fontSize: 11},
      detail: {show: false},
      title: {show: false},
      data: [{value: data.score, name: data.label}]
    }]
  });
  window.addEventListener("resize", function () { chart.resize(); });
})();
