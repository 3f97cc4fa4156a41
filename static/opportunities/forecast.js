// The forecast page (templates/opportunities/forecast.html): per frozen month the
// forecast and what was signed as bars, the accuracy (%) as a line on its own axis. The
// table under the chart holds the same numbers.
(function () {
  var el = document.getElementById("forecast-chart");
  var source = document.getElementById("forecast-chart-data");
  if (!el || !source || !window.echarts) return;
  var data = JSON.parse(source.textContent);
  // Set here: the policy refuses style attributes.
  el.style.height = "320px";
  // Axis amounts in 万 (10^4) and 亿 (10^8), as the amounts are read in CNY.
  function yuan(v) {
    if (Math.abs(v) >= 1e8) return +(v / 1e8).toFixed(2) + "亿";
    if (Math.abs(v) >= 1e4) return +(v / 1e4).toFixed(1) + "万";
    return v;
  }
  var chart = echarts.init(el);
  chart.setOption({
    animation: false,
    // Drawn on the canvas: an HTML tooltip carries style attributes the policy refuses.
    tooltip: {trigger: "axis", renderMode: "richText"},
    legend: {top: 0},
    grid: {left: 8, right: 8, top: 36, bottom: 8, containLabel: true},
    xAxis: {type: "category", data: data.months},
    yAxis: [
      {type: "value", name: "¥", axisLabel: {formatter: yuan}},
      {type: "value", name: "%", max: 100, splitLine: {show: false}}
    ],
    series: [
      {name: data.names.forecast, type: "bar", data: data.forecast},
      {name: data.names.signed, type: "bar", data: data.signed},
      {name: data.names.accuracy, type: "line", yAxisIndex: 1, data: data.accuracy,
       connectNulls: false, symbolSize: 6}
    ]
  });
  window.addEventListener("resize", function () { chart.resize(); });
})();
