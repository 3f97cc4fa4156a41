// The opportunity's page (templates/opportunities/detail.html): the decision chain drawn
// as a small graph (ECharts, vendored): the customer in the middle, each member around
// it coloured by attitude and sized by influence (opportunities.chain.graph places
// them). The table beside it holds the same facts. Drawn again whenever htmx puts a new
// chain section in place.
(function () {
  // Four invisible nodes at the circle's edges: the view is fitted to the nodes' extent,
  // so with them the customer stays in the middle however few members there are.
  function frame(nodes) {
    var radius = nodes.reduce(function (r, n) {
      return Math.max(r, Math.abs(n.x || 0), Math.abs(n.y || 0));
    }, 1);
    return [[radius, 0], [-radius, 0], [0, radius], [0, -radius]].map(function (xy, i) {
      return {
        id: "frame-" + i, name: "", x: xy[0], y: xy[1], symbolSize: 0,
        label: {show: false}, tooltip: {show: false}, emphasis: {disabled: true}
      };
    });
  }

  function draw() {
    // Found by a data attribute, not an id: htmx would copy the style the chart leaves on
    // it onto the next section's container (a style attribute the policy refuses).
    var el = document.querySelector("[data-chain-graph]");
    var source = document.getElementById("chain-graph-data");
    if (!el || !source || !window.echarts) return;
    var data = JSON.parse(source.textContent);
    // Its height is set here: the policy refuses style attributes.
    el.style.height = (el.dataset.height || 260) + "px";
    var chart = echarts.getInstanceByDom(el) || echarts.init(el);
    chart.setOption({
      animation: false,
      // Drawn on the canvas: an HTML tooltip carries style attributes the policy refuses.
      tooltip: {
        renderMode: "richText",
        formatter: function (p) {
          if (p.dataType !== "node" || p.data.id === "centre" || !p.name) return p.name;
          return p.name + " · " + p.data.value + "\n" + p.data.influence;
        }
      },
      legend: {data: data.legend, bottom: 0, itemWidth: 12, itemHeight: 12},
      series: [{
        type: "graph",
        layout: "none",
        roam: false,
        top: 36,
        bottom: 56,
        left: 48,
        right: 48,
        label: {show: true, position: "bottom", formatter: "{b}"},
        edgeLabel: {show: true, fontSize: 10, formatter: function (p) { return p.data.value; }},
        lineStyle: {color: "#adb5bd", width: 1.5},
        categories: data.categories,
        data: data.nodes.concat(frame(data.nodes)),
        links: data.links
      }]
    }, true);
  }

  function resize() {
    var el = document.querySelector("[data-chain-graph]");
    var chart = el && window.echarts && echarts.getInstanceByDom(el);
    if (chart) chart.resize();
  }

  draw();
  // A new chain section (a member mapped, changed or removed) brings new data: the old
  // chart goes with the old section.
  document.body.addEventListener("htmx:beforeSwap", function (event) {
    var old = event.detail.target && event.detail.target.querySelector
      ? event.detail.target.querySelector("[data-chain-graph]") : null;
    var chart = old && window.echarts && echarts.getInstanceByDom(old);
    if (chart) chart.dispose();
  });
  document.body.addEventListener("htmx:afterSettle", function () { draw(); });
  window.addEventListener("resize", resize);

  // Losing: the detail field only for a reason that names something (e.g. 选择竞品: the
  // competitor), or while it holds a value or an error. Without this script it is always
  // shown.
  function detailField(form) {
    var select = form.querySelector("select[name=reason]");
    var field = form.querySelector("[data-lost-detail]");
    if (!select || !field) return;
    var option = select.options[select.selectedIndex];
    var needed = option && option.hasAttribute("data-needs-detail");
    var kept = field.querySelector("input").value || field.querySelector(".invalid-feedback");
    field.classList.toggle("d-none", !needed && !kept);
  }
  function detailFields() {
    document.querySelectorAll("[data-testid=lose-form]").forEach(detailField);
  }
  detailFields();
  document.body.addEventListener("change", function (event) {
    var form = event.target.closest && event.target.closest("[data-testid=lose-form]");
    if (form && event.target.name === "reason") detailField(form);
  });
  document.body.addEventListener("htmx:afterSettle", detailFields);
})();
