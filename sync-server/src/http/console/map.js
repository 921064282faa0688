// Draws the city map from the GeoJSON at the script's data-src: cells,
// tracks and case markers as SVG, projected equirectangularly around the
// grid's mean latitude. No tiles, nothing from the internet. Every text
// comes in through textContent, never as markup.
(function () {
  "use strict";
  var script = document.currentScript;
  var svg = document.getElementById("map");
  var status = document.getElementById("map-status");
  var NS = "http://www.w3.org/2000/svg";
  var started = performance.now(), fetched = 0;
  var SIZE = 900, MARGIN = 10;

  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  // "{name}" in a message replaced by values[name] (as text).
  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (m, k) {
      return k in values ? String(values[k]) : m;
    });
  }
  function titled(e, text) {
    el("title", {}, e).textContent = text;
    return e;
  }
  function eachPosition(geometry, f) {
    var c = geometry.coordinates;
    switch (geometry.type) {
      case "Point": f(c); break;
      case "LineString": case "MultiPoint": c.forEach(f); break;
      case "Polygon": case "MultiLineString": c.forEach(function (r) { r.forEach(f); }); break;
      case "MultiPolygon": c.forEach(function (p) { p.forEach(function (r) { r.forEach(f); }); }); break;
    }
  }
  function rings(geometry) {
    if (geometry.type === "Polygon") return geometry.coordinates;
    if (geometry.type === "MultiPolygon") return [].concat.apply([], geometry.coordinates);
    return [];
  }

  fetch(script.dataset.src, { credentials: "same-origin" })
    .then(function (r) {
      if (!r.ok) return r.json().then(function (b) { throw new Error((b.field ? b.field + ": " : "") + b.reason); });
      return r.json();
    })
    .then(function (fc) {
      fetched = performance.now();
      var cells = fc.features.filter(function (f) { return f.properties.layer === "cell"; });
      var tracks = fc.features.filter(function (f) { return f.properties.layer === "track"; });
      var cases = fc.features.filter(function (f) { return f.properties.layer === "case"; });
      var gaps = fc.features.filter(function (f) { return f.properties.layer === "gap"; });
      var minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
      // data-fit="assigned": frame the cells someone patrols that day.
      var assigned = cells.filter(function (f) { return f.properties.windows > 0; });
      var framed = script.dataset.fit === "assigned" && assigned.length ? assigned : cells;
      framed.forEach(function (f) {
        eachPosition(f.geometry, function (p) {
          minX = Math.min(minX, p[0]); maxX = Math.max(maxX, p[0]);
          minY = Math.min(minY, p[1]); maxY = Math.max(maxY, p[1]);
        });
      });
      var k = Math.cos(((minY + maxY) / 2) * Math.PI / 180);
      var scale = (SIZE - 2 * MARGIN) / Math.max((maxX - minX) * k, maxY - minY, 1e-9);
      function x(p) { return (MARGIN + (p[0] - minX) * k * scale).toFixed(1); }
      function y(p) { return (MARGIN + (maxY - p[1]) * scale).toFixed(1); }
      function path(ringsList) {
        return ringsList.map(function (r) {
          return "M" + r.map(function (p) { return x(p) + "," + y(p); }).join("L") + "Z";
        }).join("");
      }
      var gCells = el("g", { id: "cells" }, svg);
      cells.forEach(function (f) {
        var p = f.properties;
        var e = el("path", {
          "class": "cell", "data-code": p.code, "data-zone": p.zone,
          "data-covered": p.covered, "data-windows": p.windows,
          d: path(rings(f.geometry)), fill: p.fill, "fill-opacity": "0.65",
          stroke: "#555", "stroke-width": "0.5"
        }, gCells);
        titled(e, p.code + " · " + p.zone + (p.name ? " · " + p.name : "") +
          " · " + p.covered + "/" + p.windows + " windows covered");
      });
      var gTracks = el("g", { id: "tracks" }, svg);
      tracks.forEach(function (f, i) {
        var hue = (i * 137) % 360;
        var d = f.geometry.coordinates.map(function (line) {
          return "M" + line.map(function (p) { return x(p) + "," + y(p); }).join("L");
        }).join("");
        var e = el("path", {
          "class": "track", "data-collector": f.properties.collector, d: d, fill: "none",
          stroke: "hsl(" + hue + ",70%,35%)", "stroke-width": "1.5"
        }, gTracks);
        titled(e, f.properties.collector + " · " + f.properties.points + " points");
      });
      // Gaps: dashed from the last fix before to the first after, coloured
      // by cause (no fix, app killed, mock location, poor accuracy).
      var GAP = { no_fix: "#888", app_killed: "#c60", mock: "#c0c", poor_accuracy: "#08c" };
      var gGaps = el("g", { id: "gaps" }, svg);
      gaps.forEach(function (f) {
        var p = f.properties;
        var c = f.geometry.type === "LineString" ? f.geometry.coordinates : [f.geometry.coordinates, f.geometry.coordinates];
        var e = el("path", {
          "class": "gap", "data-cause": p.cause, "data-collector": p.collector,
          d: "M" + x(c[0]) + "," + y(c[0]) + "L" + x(c[1]) + "," + y(c[1]),
          fill: "none", stroke: GAP[p.cause] || "#888", "stroke-width": "2.5",
          "stroke-dasharray": "4 3", "stroke-linecap": "round"
        }, gGaps);
        titled(e, p.collector + " · " + p.cause.replace("_", " ") + " · " + p.from + "–" + p.to +
          " (" + p.minutes + " min)");
      });
      var gCases = el("g", { id: "cases" }, svg);
      cases.forEach(function (f) {
        var p = f.properties;
        var a = el("a", { href: "/console/cases/" + encodeURIComponent(p.id) }, gCases);
        var marked = p.id === script.dataset.highlight;
        var c = el("circle", {
          "class": marked ? "case highlight" : "case", "data-case": p.id, "data-status": p.status,
          cx: x(f.geometry.coordinates), cy: y(f.geometry.coordinates), r: marked ? 10 : 4,
          fill: marked ? "#c00" : "#fff", stroke: "#c00", "stroke-width": 2
        }, a);
        titled(c, (p.category || "") + " · " + p.status + " · " + (p.collector || ""));
      });
      // The page gives the line in its language; the counts fill it in.
      status.textContent = fill(script.dataset.statusText ||
        "{cells} cells · {tracks} tracks · {cases} cases · {gaps} gaps · {day}", {
        cells: cells.length, tracks: tracks.length, cases: cases.length, gaps: gaps.length, day: fc.day
      });
      // Ready once painted: timings (ms) for whoever measures the console.
      requestAnimationFrame(function () {
        requestAnimationFrame(function () {
          var painted = performance.now();
          svg.setAttribute("data-fetch-ms", Math.round(fetched - started));
          svg.setAttribute("data-draw-ms", Math.round(painted - fetched));
          svg.setAttribute("data-ready", "1");
        });
      });
    })
    .catch(function (e) {
      status.textContent = fill(script.dataset.errorText || "map: {reason}", { reason: e.message });
      status.className = "error";
      svg.setAttribute("data-ready", "error");
    });
})();
