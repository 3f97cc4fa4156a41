// The manager dashboard (templates/crm/dashboard.html): the charted figures day by day,
// this period's as solid lines and the previous period's, day for day, dashed. A click on
// a point opens that day's rows; the tiles above hold the period's totals.
(function () {
  var el = document.getElementById("dashboard-chart");
  if (!el || !window.echarts) return;
  var data = JSON.parse(document.getElementById("dashboard-chart-data").textContent);
  // Set here: the policy refuses style attributes.
  el.style.height = el.dataset.height + "px";
  // One colour per figure: this period's line and the previous period's share it.
  var palette = ["#0d6efd", "#198754", "#fd7e14", "#6f42c1", "#d63384"];
  var chart = echarts.init(el);
  chart.setOption({
    animation: false,
    // Drawn on the canvas: an HTML tooltip carries style attributes the policy refuses.
    tooltip: {trigger: "axis", renderMode: "richText"},
    legend: {top: 0, type: "scroll"},
    grid: {left: 8, right: 24, top: 36, bottom: 8, containLabel: true},
    xAxis: {type: "category", data: data.days, boundaryGap: false},
    yAxis: {type: "value", minInterval: 1},
    series: data.series.map(function (s, i) {
      var color = palette[Math.floor(i / 2) % palette.length];
      return {
        name: s.name,
        type: "line",
        data: s.data,
        cursor: "pointer",
        symbolSize: 6,
        itemStyle: {color: color},
        lineStyle: {color: color, type: s.previous ? "dashed" : "solid", width: s.previous ? 1 : 2}
      };
    })
  });
  chart.on("click", function (p) {
    if (p.data && p.data.url) window.location.href = p.data.url;
  });
  window.addEventListener("resize", function () { chart.resize(); });
})();
