// The water levels (templates/crm/levels.html): one small line chart per level, the
// team's line (and a rep's beside it), the target as a dashed line, the anomalies as red
// pins. A click on a point opens the rows behind that day's value. The table under each
// chart holds the same numbers.
(function () {
  var source = document.getElementById("level-chart-data");
  if (!source || !window.echarts) return;
  var data = JSON.parse(source.textContent);
  var charts = [];
  document.querySelectorAll(".level-chart").forEach(function (el) {
    var level = data.levels[Number(el.dataset.chart)];
    if (!level) return;
    // Set here: the policy refuses style attributes.
    el.style.height = "220px";
    var chart = echarts.init(el);
    var series = level.series.map(function (s, index) {
      var pins = [];
      s.points.forEach(function (p, day) {
        if (p.anomaly) pins.push({coord: [day, p.value], value: "!", url: p.url});
      });
      var line = {
        name: s.name,
        type: "line",
        connectNulls: false,
        symbolSize: 6,
        cursor: "pointer",
        data: s.points.map(function (p) {
          return {value: p.value, url: p.url, text: p.text};
        }),
        markPoint: {
          symbol: "pin",
          symbolSize: 34,
          itemStyle: {color: "#dc3545"},
          label: {color: "#fff"},
          data: pins
        }
      };
      if (index === 0 && level.target !== null) {
        line.markLine = {
          symbol: "none",
          silent: true,
          lineStyle: {type: "dashed", color: "#198754"},
          label: {formatter: level.targetLabel, position: "insideEndTop"},
          data: [{yAxis: level.target}]
        };
      }
      return line;
    });
    chart.setOption({
      animation: false,
      // Drawn on the canvas: an HTML tooltip carries style attributes the policy refuses.
      tooltip: {
        trigger: "axis",
        renderMode: "richText",
        formatter: function (items) {
          var lines = [items.length ? items[0].axisValue : ""];
          items.forEach(function (item) {
            lines.push(item.seriesName + ": " + (item.data && item.data.text ? item.data.text : "—"));
          });
          return lines.join("\n");
        }
      },
      legend: {top: 0, type: "scroll"},
      grid: {left: 8, right: 24, top: 32, bottom: 8, containLabel: true},
      xAxis: {type: "category", data: level.days, boundaryGap: false},
      yAxis: {
        type: "value",
        name: level.unit,
        min: 0,
        // The target line stays in sight when every day is far below it.
        max: level.unit === "%" ? 100 : function (extent) {
          return Math.ceil(Math.max(extent.max, level.target || 0) * 1.1);
        }
      },
      series: series
    });
    chart.on("click", function (p) {
      if (p.data && p.data.url) window.location.href = p.data.url;
    });
    charts.push(chart);
  });
  window.addEventListener("resize", function () {
    charts.forEach(function (chart) { chart.resize(); });
  });
})();
