// The fixed parts of report.html: its style sheet, the error catcher that
// runs before anything else, and the script that turns the plot data
// (report/plots.h) into Chart.js charts and writes the render check
// (report/report.h). Chart.js does all the drawing; this only maps each
// plot kind onto a Chart.js configuration.
#ifndef FEDSIM_REPORT_PAGE_SCRIPT_H_
#define FEDSIM_REPORT_PAGE_SCRIPT_H_

namespace fedsim {

inline constexpr char kPageStyle[] = R"css(
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.1em; margin: 1.6em 0 0.4em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.6em 0; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: left; }
code { font-size: 0.9em; } pre { font-size: 0.8em; background: #f6f6f6; padding: 0.5em; }
.chart { position: relative; width: 100%; }
.note { color: #555; font-size: 0.85em; margin: 0.3em 0; }
.warn { color: #a00; }
)css";

// Collects every error, including those inside Chart.js, for the render check.
inline constexpr char kErrorCatcher[] = R"js(
window.fedsimErrors = [];
window.addEventListener('error', function (e) {
  window.fedsimErrors.push(String(e.message || e.type) + (e.lineno ? ' (line ' + e.lineno + ')' : ''));
});
)js";

inline constexpr char kPageScript[] = R"js(
(function () {
  var check = {done: false, errors: window.fedsimErrors, plots: []};
  function points(s) { return s.data.map(function (q) { return {x: q[0], y: q[1]}; }); }
  function axes(p, x, y) {
    x.title = {display: true, text: p.x_label};
    y.title = {display: true, text: p.y_label};
    return {x: x, y: y};
  }
  function hideBandEdges(item, data) {
    var role = data.datasets[item.datasetIndex].fedsimRole;
    return role !== 'lo' && role !== 'hi';
  }
  function lineConfig(p) {
    return {
      type: 'line',
      data: {datasets: p.series.map(function (s) {
        return {
          label: s.label, data: points(s), fedsimRole: s.role,
          borderColor: s.color,
          backgroundColor: s.role === 'hi' ? s.color + '33' : s.color,
          borderWidth: s.role === 'mean' || s.role === 'mean2' ? 2 : 0,
          borderDash: s.role === 'mean2' ? [6, 3] : [],
          pointRadius: 0, pointHitRadius: 4, tension: 0,
          fill: s.role === 'hi' ? '-1' : false
        };
      })},
      options: {
        scales: axes(p, {type: 'linear'}, {type: p.y_scale === 'log' ? 'logarithmic' : 'linear'}),
        interaction: {mode: 'nearest', axis: 'x', intersect: false},
        plugins: {legend: {labels: {filter: hideBandEdges}}}
      }
    };
  }
  function histConfig(p) {
    return {
      type: 'bar',
      data: {labels: p.categories, datasets: p.series.map(function (s) {
        return {label: s.label, data: s.data, backgroundColor: s.color};
      })},
      options: {scales: axes(p, {type: 'category'}, {type: 'linear', beginAtZero: true})}
    };
  }
  function timelineConfig(p) {
    return {
      type: 'bar',
      data: {labels: p.categories, datasets: p.series.map(function (s) {
        return {
          label: s.label, backgroundColor: s.color, grouped: false,
          barPercentage: 0.8, categoryPercentage: 1,
          data: s.data.map(function (q) { return {y: p.categories[q[0]], x: [q[1], q[2]]}; })
        };
      })},
      options: {
        indexAxis: 'y',
        scales: axes(p, {type: 'linear', beginAtZero: true}, {type: 'category'})
      }
    };
  }
  function heatmapConfig(p) {
    var rows = p.categories.length, bins = p.bins;
    function cell(ctx) {
      var a = ctx.chart.chartArea;
      if (!a) return 2;
      return Math.max(1, Math.min((a.right - a.left) / bins, (a.bottom - a.top) / rows) / 2);
    }
    function shade(ctx) {
      var v = ctx.raw ? ctx.raw.v : 0, f = p.max > 0 ? v / p.max : 0;
      var c = function (lo, hi) { return Math.round(lo + (hi - lo) * f); };
      return 'rgb(' + c(247, 8) + ',' + c(251, 48) + ',' + c(255, 107) + ')';
    }
    var s = p.series[0];
    return {
      type: 'scatter',
      data: {datasets: [{
        label: s.label, pointStyle: 'rect', borderWidth: 0,
        backgroundColor: shade, pointRadius: cell, pointHoverRadius: cell,
        data: s.data.map(function (q) { return {x: q[0], y: q[1], v: q[2]}; })
      }]},
      options: {
        scales: axes(p, {type: 'linear', min: 0, max: p.x_max,
                         ticks: {callback: function (v) { return +v.toPrecision(4); }}},
                     {type: 'linear', min: -0.5, max: rows - 0.5, reverse: true,
                      ticks: {callback: function (v) { return p.categories[v] || ''; }}}),
        plugins: {legend: {display: false}, tooltip: {callbacks: {label: function (ctx) {
          return p.categories[ctx.raw.y] + ': ' + ctx.raw.v + ' tasks';
        }}}}
      }
    };
  }
  var make = {line: lineConfig, hist: histConfig, timeline: timelineConfig, heatmap: heatmapConfig};
  try {
    Chart.defaults.animation = false;
    Chart.defaults.maintainAspectRatio = false;
    var plots = JSON.parse(document.getElementById('fedsim-plots').textContent);
    plots.forEach(function (p) {
      var chart = new Chart(document.getElementById('plot-' + p.id), make[p.kind](p));
      // The heat map's cells are sized from the chart area, known after the
      // first layout: draw once more.
      if (p.kind === 'heatmap') chart.update();
      check.plots.push({id: p.id, kind: p.kind, y_type: chart.scales.y.type, series: chart.data.datasets.map(function (d, i) {
        return {label: d.label, points: chart.getDatasetMeta(i).data.length};
      })});
    });
    check.done = true;
  } catch (e) {
    window.fedsimErrors.push(String(e && e.stack || e));
  }
  document.getElementById('fedsim-render-check').textContent = JSON.stringify(check);
})();
)js";

}  // namespace fedsim

#endif  // FEDSIM_REPORT_PAGE_SCRIPT_H_
