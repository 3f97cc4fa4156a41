// The lead-to-contract cycle (templates/opportunities/cycle.html): per cohort the
// contracts won stacked by their days from lead to contract (one series per bucket of
// the histogram), the median days as a line on its own axis. A click on a bar opens the
// contracts behind it. The table under the chart holds the same numbers.
(function () {
  var el = document.getElementById("cycle-chart");
  var source = document.getElementById("cycle-chart-data");
  if (!el || !source || !window.echarts) return;
  var data = JSON.parse(source.textContent);
  // Set here: the policy refuses style attributes.
  el.style.height = "340px";
  var series = data.series.map(function (s) {
    return {name: s.name, type: "bar", stack: "days", data: s.data, cursor: "pointer"};
  });
  series.push({
    name: data.names.median, type: "line", yAxisIndex: 1, data: data.median,
    connectNulls: false, symbolSize: 6
  });
  var chart = echarts.init(el);
  chart.setOption({
    animation: false,
    // Drawn on the canvas: an HTML tooltip carries style attributes the policy refuses.
    tooltip: {trigger: "axis", axisPointer: {type: "shadow"}, renderMode: "richText"},
    legend: {top: 0, type: "scroll"},
    grid: {left: 8, right: 8, top: 40, bottom: 8, containLabel: true},
    xAxis: {type: "category", data: data.months},
    yAxis: [
      {type: "value", name: data.names.contracts, minInterval: 1},
      {type: "value", name: data.names.days, splitLine: {show: false}}
    ],
    series: series
  });
  chart.on("click", function (p) {
    if (p.data && p.data.url) window.location.href = p.data.url;
  });
  window.addEventListener("resize", function () { chart.resize(); });
})();
