// The lead-quality report (templates/leads/report_lead_quality.html).
// The invalid reasons as horizontal bars, one stacked series per channel; a click on a
// bar opens the leads behind it. The table under the chart holds the same numbers.
(function () {
  var el = document.getElementById("reason-chart");
  if (!el || !window.echarts) return;
  var data = JSON.parse(document.getElementById("reason-chart-data").textContent);
  // Its height grows with the reasons (set here: the policy refuses style attributes).
  el.style.height = el.dataset.height + "px";
  var chart = echarts.init(el);
  chart.setOption({
    animation: false,
    // Drawn on the canvas: an HTML tooltip carries style attributes the policy refuses.
    tooltip: {trigger: "axis", axisPointer: {type: "shadow"}, renderMode: "richText"},
    legend: {top: 0, type: "scroll"},
    grid: {left: 8, right: 24, top: 36, bottom: 8},
    xAxis: {type: "value", minInterval: 1},
    yAxis: {type: "category", data: data.reasons, inverse: true},
    series: data.series.map(function (s) {
      return {name: s.name, type: "bar", stack: "reasons", data: s.data, cursor: "pointer"};
    })
  });
  chart.on("click", function (p) {
    if (p.data && p.data.url) window.location.href = p.data.url;
  });
  window.addEventListener("resize", function () { chart.resize(); });
})();
