/* Draws every <figure class="chart"> with uPlot from the JSON in its
   <script type="application/json">, and again after htmx replaces a live panel or the
   window is resized. The same numbers are in the figure's table, for screen readers and
   for anyone without JavaScript; the canvas itself is hidden from assistive technology. */
(function () {
  "use strict";
  var COLOURS = {
    "sent": "#1e6b34", "failed": "#a3241b", "bounced": "#8a5a00",
    "sign-ups": "#123e7c", "confirmations": "#1e6b34", "unsubscribes": "#a3241b",
    "bounces": "#8a5a00", "complaints": "#5b2a86",
    "clicks": "#123e7c", "people": "#123e7c", "machines": "#8a5a00", "click rate %": "#1e6b34"
  };

  function draw(figure) {
    var source = figure.querySelector("script[type='application/json']");
    var box = figure.querySelector(".chart-box");
    if (!source || !box || typeof uPlot === "undefined") { return; }
    var chart = JSON.parse(source.textContent);
    var names = Object.keys(chart.lines);
    var labels = chart.labels;  // categorical x (editions): positions 0..n-1, named by label
    var xs = labels ? labels.map(function (_, i) { return i; }) : chart.x;
    var width = Math.max(240, box.clientWidth || figure.clientWidth || 600);
    var options = {
      width: width,
      // Times on these pages are UTC (the tables say so): the axis too, not the browser's zone.
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },
      height: width < 480 ? 160 : 200,
      legend: { show: true, live: false },
      cursor: { show: true, drag: { x: false, y: false } },
      // Bars (counts per category) want half a step of room either side of the first and last.
      scales: { x: chart.bars ? { time: false, range: function (u, min, max) { return [min - 0.5, max + 0.5]; } }
                              : { time: !labels }, y: { range: function (u, min, max) { return [0, Math.max(4, max)]; } } },
      axes: [
        labels ? {
          values: function (u, ticks) {
            return ticks.map(function (t) { var l = labels[t]; return l ? l.split(" · ")[0] : ""; });
          },
          incrs: [1, 2, 5, 10]
        } : {},
        { size: 44, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000] }
      ],
      series: [{}].concat(names.map(function (name, i) {
        var colour = COLOURS[name] || "#333333";
        // A bar chart draws its first line as bars, any other (machines) as a line over them.
        if (chart.bars && i === 0) {
          return { label: name, stroke: colour, fill: colour + "cc", width: 1, points: { show: false },
                   paths: uPlot.paths.bars({ size: [0.7, 60] }) };
        }
        return { label: name, stroke: colour, width: 2,
                 points: { show: xs.length <= 40 } };
      }))
    };
    box.textContent = "";
    new uPlot(options, [xs].concat(names.map(function (n) { return chart.lines[n]; })), box);
    box.dataset.width = String(width);
  }

  function drawAll(root) {
    (root || document).querySelectorAll("figure.chart").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  document.addEventListener("htmx:afterSwap", function (event) { drawAll(event.detail.target); });
  var resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(function () {
      document.querySelectorAll("figure.chart").forEach(function (figure) {
        var box = figure.querySelector(".chart-box");
        if (box && Math.abs((box.clientWidth || 0) - Number(box.dataset.width || 0)) > 20) { draw(figure); }
      });
    }, 200);
  });
}());
