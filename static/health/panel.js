// The health panel of the customer page (templates/health/panel_health.html): the score
// of the last 90 days as a line (ECharts, vendored), with gaps on the days without a
// score and the tenant's risk line. The data comes from the json_script beside the
// chart. ECharts is loaded here when the page has not loaded it yet (the panel may
// arrive later, by htmx); drawn again whenever htmx puts a new panel in place.
(function () {
  function charts() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-health-trend]"));
  }

  function draw() {
    var source = document.getElementById("health-trend-data");
    var el = charts()[0];
    if (!el || !source) return;
    if (!window.echarts) { loadECharts(el.dataset.echartsSrc); return; }
    var data = JSON.parse(source.textContent);
    // Its height is set here: the policy refuses style attributes.
    el.style.height = (el.dataset.height || 200) + "px";
    var chart = echarts.getInstanceByDom(el) || echarts.init(el);
    chart.setOption({
      animation: false,
      grid: {top: 16, bottom: 28, left: 36, right: 16},
      // Drawn on the canvas: an HTML tooltip carries style attributes the policy refuses.
      tooltip: {
        trigger: "axis",
        renderMode: "richText",
        formatter: function (items) {
          var p = items[0];
          var value = p.value === null || p.value === undefined ? data.labels.none : p.value;
          return p.axisValue + "\n" + data.labels.score + ": " + value;
        }
      },
      xAxis: {
        type: "category",
        data: data.days,
        boundaryGap: false,
        axisLabel: {formatter: function (day) { return day.slice(5); }}
      },
      yAxis: {type: "value", min: 0, max: 100, interval: 20},
      series: [{
        type: "line",
        name: data.labels.score,
        data: data.scores,
        connectNulls: false,
        showSymbol: false,
        lineStyle: {width: 2, color: "#0d6efd"},
        itemStyle: {color: "#0d6efd"},
        markLine: {
          silent: true,
          symbol: "none",
          lineStyle: {color: "#dc3545", type: "dashed"},
          label: {
            position: "insideStartTop", formatter: data.labels.threshold, color: "#dc3545",
            backgroundColor: "rgba(255, 255, 255, 0.85)", padding: [1, 3]
          },
          data: [{yAxis: data.threshold}]
        }
      }]
    }, true);
  }

  var loading = false;
  function loadECharts(src) {
    if (loading || !src) return;
    loading = true;
    var script = document.createElement("script");
    script.src = src;
    script.addEventListener("load", function () { loading = false; draw(); });
    document.head.appendChild(script);
  }

  draw();
  if (window.crmHealthPanel) return;  // the listeners once, however often the panel comes
  window.crmHealthPanel = true;
  document.body.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    var old = target && target.querySelector ? target.querySelector("[data-health-trend]") : null;
    var chart = old && window.echarts && echarts.getInstanceByDom(old);
    if (chart) chart.dispose();
  });
  document.body.addEventListener("htmx:afterSettle", function () { draw(); });
  window.addEventListener("resize", function () {
    charts().forEach(function (el) {
      var chart = window.echarts && echarts.getInstanceByDom(el);
      if (chart) chart.resize();
    });
  });
})();
