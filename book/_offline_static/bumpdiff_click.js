/* bumpdiff: click a point of a 3D manifold figure to see that label's sample (offline; no network).
 *
 * A figure built by bumpdiff_core.figures.manifold_scrubber carries, in layout.meta.bumpdiff_samples,
 * every label's sample at every checkpoint (one base64 block of uint8 pixels per checkpoint), and
 * each 3D point carries customdata [x, y, label_index, bump_count, accurate, centre_x, centre_y, step].
 * On plotly's `plotly_click` this script draws the clicked label's sample (at the checkpoint the
 * figure shows) into the figure's sample panel: heatmap, requested centre, detected centre, caption.
 *
 * A plain script (no AMD `define`), so it does not clash with the require.js of widget pages.
 */
(function () {
  "use strict";

  function sampleRows(info, stepIndex, label) {
    var bin = atob(info.pixels[stepIndex]), n = info.size, base = label * n * n, rows = [];
    for (var r = 0; r < n; r++) {
      var row = new Array(n);
      for (var c = 0; c < n; c++) row[c] = bin.charCodeAt(base + r * n + c);
      rows.push(row);
    }
    return rows;
  }

  function fmt(v, digits) {
    return Number(v).toFixed(digits).replace(/\.0+$/, "").replace(/(\.\d*?)0+$/, "$1");
  }

  function caption(d) {
    var detected = (d.centre_x === null || d.centre_x === undefined || isNaN(d.centre_x))
      ? "none" : "(" + Number(d.centre_x).toFixed(1) + ", " + Number(d.centre_y).toFixed(1) + ")";
    var bumps = d.bump_count + (d.bump_count === 1 ? " bump" : " bumps");
    return "label " + d.label_index + " at step " + d.step + ": requested (" + fmt(d.x, 3) + ", " +
      fmt(d.y, 3) + ")<br>detected " + detected + " · " + bumps + " · " +
      (d.accurate ? "accurate" : "not accurate");
  }

  function show(gd, info, customdata) {
    var d = {};
    info.fields.forEach(function (name, k) { d[name] = customdata[k]; });
    var k = info.steps.indexOf(Number(d.step));
    if (k < 0) return;
    var have = !(d.centre_x === null || d.centre_x === undefined || isNaN(d.centre_x));
    var update = {};
    update["annotations[" + info.caption + "].text"] = caption(d);
    return Plotly.restyle(gd, {z: [sampleRows(info, k, Number(d.label_index))]}, [info.heatmap])
      .then(function () { return Plotly.restyle(gd, {x: [[d.x]], y: [[d.y]]}, [info.requested]); })
      .then(function () {
        return Plotly.restyle(gd, {x: [have ? [d.centre_x] : []], y: [have ? [d.centre_y] : []]}, [info.detected]);
      })
      .then(function () { return Plotly.relayout(gd, update); })
      .then(function () { gd.setAttribute("data-bumpdiff-shown", d.step + ":" + d.label_index); });
  }

  function attach(gd) {
    var info = gd.layout && gd.layout.meta && gd.layout.meta.bumpdiff_samples;
    if (!info || gd.__bumpdiffClick || typeof gd.on !== "function") return;
    gd.__bumpdiffClick = true;
    gd.on("plotly_click", function (event) {
      var pts = (event && event.points) || [];
      for (var i = 0; i < pts.length; i++) {
        if (pts[i].customdata && pts[i].customdata.length >= info.fields.length) {
          show(gd, info, Array.prototype.slice.call(pts[i].customdata));
          return;
        }
      }
    });
  }

  function scan() {
    if (typeof window.Plotly === "undefined") return;
    var divs = document.querySelectorAll(".plotly-graph-div");
    for (var i = 0; i < divs.length; i++) attach(divs[i]);
  }

  // figures are drawn by inline scripts in the page body; attach once they exist
  document.addEventListener("DOMContentLoaded", scan);
  window.addEventListener("load", scan);
  var tries = 0, timer = setInterval(function () { scan(); if (++tries > 40) clearInterval(timer); }, 250);
  window.bumpdiffShowSample = show;  // for tests and the curious
})();
