// The service metrics report (templates/service_feedback/report.html): the trend as two
// line charts, the rates (percent) and the resolution times (hours) per week or month;
// a click on a point opens the tickets behind it. The table under them holds the numbers.
(function () {
  var dataEl = document.getElementById("service-chart-data");
  if (!dataEl || !window.echarts) return;
  var data = JSON.parse(dataEl.textContent);
  var charts = [];

  function draw(id, series, axisName) {
    var el = document.getElementById(id);
    if (!el) return;
    // Set here: the policy refuses style attributes.
    el.style.height = el.dataset.height + "px";
    var chart = echarts.init(el);
    chart.setOption({
      animation: false,
      // Drawn on the canvas: an HTML tooltip carries style attributes the policy refuses.
      tooltip: {trigger: "axis", renderMode: "richText"},
      legend: {top: 0, type: "scroll"},
      grid: {left: 8, right: 24, top: 36, bottom: 8, containLabel: true},
      xAxis: {type: "category", data: data.buckets},
      yAxis: {type: "value", name: axisName, min: 0},
      series: series.map(function (s) {
        return {name: s.name, type: "line", data: s.data, connectNulls: false, cursor: "pointer"};
      })
    });
    chart.on("click", function (p) {
      if (p.data && p.data.url) window.location.href = p.data.url;
    });
    charts.push(chart);
  }

  draw("service-rate-chart", data.rates, data.rate_axis);
  draw("service-time-chart", data.times, data.time_axis);
  window.addEventListener("resize", function () {
    charts.forEach(function (c) { c.resize(); });
  });
})();
