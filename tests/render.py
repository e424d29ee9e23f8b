"""Render a `dvc plots show` / `dvc plots diff` HTML page in headless Chromium and
check what Vega actually drew: the bigram heatmaps (and, optionally, the line charts).

How it works: the page is copied (with a <base href> so relative image paths still
resolve), and two small scripts are added. The first wraps `vegaEmbed`, which DVC's page
calls once per plot, to keep each returned promise; the second waits for all of them and
writes a JSON report into the page: per plot div, the marks in Vega's scenegraph (number
of rect/line/symbol items, distinct rect fills, one tooltip, every text item: titles,
axis titles, header and legend labels), how many canvas pixels are painted, where the
chart ends, and whether the page overflows horizontally (a chart cut off at the window
width). `chromium --dump-dom --virtual-time-budget=...` prints the page after Vega has
run; the report is parsed from that. Nothing is timed by the wall clock or read from
screen pixels outside the charts' own canvases, so the result is deterministic.

Used by tests/test_experiments.py:

    report = assert_heatmaps_drawn(page, revisions=["HEAD", exp], symbols=27)
    assert_line_charts_drawn(report, {"train_loss": "line", "eval_nll": "symbol"})
"""

from __future__ import annotations

import html as html_lib
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HEATMAP_ID = "bigram_heatmaps"
PANELS = ("P_count (count-based)", "P_neural (softmax of W)", "P_count − P_neural")
TOOLTIP_KEYS = {
    "revision",
    "previous symbol(s), the context",
    "next symbol",
    "P_count",
    "P_neural",
    "P_count − P_neural",
}

# Runs before the first plot div: vega-embed is already defined (inline in <head>),
# the plot divs' scripts have not run yet.
_PROBE_HEAD = """<script>
window.__embeds = [];
(function () {
  var embed = window.vegaEmbed;
  if (typeof embed !== "function") { window.__probeError = "vegaEmbed is not defined"; return; }
  window.vegaEmbed = function (el, spec, opt) {
    var p = embed(el, spec, opt);
    window.__embeds.push({id: String(el).replace(/^#/, ""), promise: p});
    return p;
  };
})();
</script>"""

# Runs last: waits for every chart, then summarises each one into <pre id="render-report">.
_PROBE_TAIL = """<script>
(function () {
  function summarise(id, result) {
    var out = {id: id, marks: {}, rect_fills: 0, texts: [], tooltip: null};
    var fills = {};
    (function walk(node) {
      if (!node) return;
      if (node.marktype && node.role !== "frame" && node.items) {
        if (node.role === "mark" && node.items.length)  // data marks, not axes or legends
          out.marks[node.marktype] = (out.marks[node.marktype] || 0) + node.items.length;
        node.items.forEach(function (i) {
          if (node.marktype === "rect" && node.role === "mark" && i.fill) {
            fills[i.fill] = 1;
            if (!out.tooltip && i.tooltip) out.tooltip = i.tooltip;
          }
          if (node.marktype === "text" && i.text != null && i.text !== "" &&
              i.opacity !== 0)  // labels hidden by labelOverlap stay in the scene with opacity 0
            out.texts.push(Array.isArray(i.text) ? i.text.join(" ") : String(i.text));
        });
      }
      (node.items || []).forEach(walk);
    })(result.view.scenegraph().root);
    out.rect_fills = Object.keys(fills).length;
    var el = document.getElementById(id);
    var canvas = el && el.querySelector("canvas");
    var svg = el && el.querySelector("svg.marks");
    var box = (canvas || svg || el).getBoundingClientRect();
    out.box = {left: box.left, right: box.right, width: box.width, height: box.height};
    if (canvas) {
      var ctx = canvas.getContext("2d");
      var d = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
      var painted = 0, total = 0;
      for (var k = 0; k < d.length; k += 16) {  // every 4th pixel
        total++;
        if (d[k + 3] > 0 && (d[k] < 235 || d[k + 1] < 235 || d[k + 2] < 235)) painted++;
      }
      out.painted = painted / Math.max(total, 1);
      out.renderer = "canvas";
    } else {
      out.painted = svg ? 1 : 0;
      out.renderer = svg ? "svg" : "none";
    }
    return out;
  }
  function report(obj) {
    var pre = document.createElement("pre");
    pre.id = "render-report";
    pre.textContent = JSON.stringify(obj);
    document.body.appendChild(pre);
  }
  var embeds = window.__embeds || [];
  Promise.all(embeds.map(function (e) {
    return e.promise.then(function (r) { return summarise(e.id, r); },
                          function (err) { return {id: e.id, error: String(err)}; });
  })).then(function (plots) {
    report({probe_error: window.__probeError || null, plots: plots,
            inner_width: window.innerWidth,
            scroll_width: document.documentElement.scrollWidth});
  }, function (err) { report({probe_error: String(err), plots: []}); });
})();
</script>"""


def instrument(page: str, base_dir: Path) -> str:
    """The page with the two probe scripts and a <base> pointing at its own folder.
    The first probe goes just before the first plot div DVC wrote (`<div id = "...">`):
    by then the inline vega-embed is defined (its own source contains "<body>" in a
    string, so the body tag is no anchor); the second just before the last </body>."""
    end = page.lower().rfind("</body>")
    if end < 0:
        raise AssertionError("the page has no </body>")
    first_div = re.search(r'<div\s+id\s*=\s*"', page)
    start = first_div.start() if first_div and first_div.start() < end else end
    page = page[:start] + _PROBE_HEAD + page[start:end] + _PROBE_TAIL + page[end:]
    head = page.find("<head>")
    if head >= 0:
        page = page[: head + 6] + f'<base href="{base_dir.resolve().as_uri()}/">' + page[head + 6 :]
    return page


def chromium_args(url: str, profile: str, width: int, height: int, budget_ms: int) -> list[str]:
    return [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        f"--virtual-time-budget={budget_ms}",
        "--hide-scrollbars",
    ] + [url]


def render_report(
    html_path, width: int = 1400, height: int = 2400, budget_ms: int = 5000, timeout: int = 120
) -> dict:
    """Render the page headless and return the probe's report:
    {"plots": {div id: summary}, "inner_width": px, "scroll_width": px}."""
    if CHROMIUM is None:
        raise RuntimeError("chromium is not installed (apt-get install chromium)")
    html_path = Path(html_path)
    page = html_path.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="check-render-") as tmp:
        probe = Path(tmp) / "page.html"
        probe.write_text(instrument(page, html_path.parent), encoding="utf-8")
        args = chromium_args(probe.as_uri(), str(Path(tmp) / "profile"), width, height, budget_ms)
        done = subprocess.run(
            args[:-1] + ["--dump-dom", args[-1]], capture_output=True, text=True, timeout=timeout
        )
    m = re.search(r'<pre id="render-report">(.*?)</pre>', done.stdout, flags=re.S)
    if not m:
        raise AssertionError(
            f"no render report: the charts did not finish within {budget_ms} ms of virtual "
            f"time (exit {done.returncode}); stderr tail: {done.stderr[-800:]}"
        )
    report = json.loads(html_lib.unescape(m.group(1)))
    report["plots"] = {p["id"]: p for p in report["plots"]}
    return report


def screenshot(
    html_path,
    png_path,
    width: int = 1400,
    height: int = 2400,
    budget_ms: int = 5000,
    timeout: int = 120,
) -> Path:
    """A screenshot of the page as a person sees it at that window size (for looking at)."""
    with tempfile.TemporaryDirectory(prefix="check-render-") as tmp:
        args = chromium_args(
            Path(html_path).resolve().as_uri(), str(Path(tmp) / "profile"), width, height, budget_ms
        )
        subprocess.run(
            args[:-1] + [f"--screenshot={Path(png_path).resolve()}", args[-1]],
            capture_output=True,
            timeout=timeout,
            check=True,
        )
    return Path(png_path)


def assert_offline(html_path) -> None:
    """Vega, vega-lite and vega-embed are inline: the page loads no script from a network."""
    page = Path(html_path).read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]+src=", page, flags=re.I), "the page loads a script"


def assert_fits(report: dict, plot_id: str) -> None:
    plot = report["plots"][plot_id]
    assert report["scroll_width"] <= report["inner_width"], (
        f"the page is {report['scroll_width']} px wide in a {report['inner_width']} px window: "
        "something is cut off"
    )
    assert plot["box"]["right"] <= report["inner_width"], (
        f"{plot_id} ends at {plot['box']['right']:.0f} px, "
        f"past the {report['inner_width']} px window"
    )


def assert_heatmaps_drawn(
    html_path,
    revisions=None,
    symbols=None,
    plot_id: str = HEATMAP_ID,
    width: int = 1400,
    report: dict | None = None,
    cells: int | None = None,
) -> dict:
    """Assert the page drew the bigram heatmaps: three panels per revision, one rect per
    (previous, next) pair, coloured, labelled in words and by revision, with tooltips, and
    not cut off at `width` px. `revisions` (names as DVC shows them: "workspace", "HEAD~1",
    an experiment name) and `symbols` (V) make the counts exact; so does `cells`, the
    table's rows over all revisions (for contexts of k > 1 symbols). Returns the report."""
    assert_offline(html_path)
    report = report or render_report(html_path, width=width)
    assert not report.get("probe_error"), report["probe_error"]
    plots = report["plots"]
    assert plot_id in plots, f"no chart {plot_id!r} was embedded; charts: {sorted(plots)}"
    plot = plots[plot_id]
    assert "error" not in plot, f"vega-embed failed for {plot_id}: {plot['error']}"
    rects = plot["marks"].get("rect", 0)
    assert rects > 0 and rects % 3 == 0, f"expected 3 panels of rects, got {plot['marks']}"
    if revisions is not None and symbols is not None:
        assert rects == 3 * len(revisions) * symbols**2, (
            f"{rects} cells drawn, expected 3 panels x {len(revisions)} revisions x {symbols}²"
        )
    if cells is not None:
        assert rects == 3 * cells, f"{rects} cells drawn, expected 3 panels x {cells} table rows"
    assert plot["rect_fills"] >= 20, f"only {plot['rect_fills']} distinct colours: not a heatmap"
    assert plot["painted"] > 0.15, f"only {plot['painted']:.0%} of the canvas is painted"
    texts = set(plot["texts"])
    for words in ("previous symbol(s), the context", "next symbol", *PANELS):
        assert words in texts, f"{words!r} is not drawn; texts: {sorted(texts)[:40]}"
    garbled = [t for t in texts if "\u00e2\u20ac" in t or "\u00e2\u02c6" in t or "\u00c3" in t]
    assert not garbled, (
        f"text decoded with the wrong charset (UTF-8 read as windows-1252): {garbled}"
    )
    for rev in revisions or []:
        assert f"revision: {rev}" in texts, f"revision {rev!r} is not named on the chart"
    assert TOOLTIP_KEYS <= set(plot["tooltip"] or {}), f"tooltip is {plot['tooltip']}"
    assert_fits(report, plot_id)
    return report


def assert_line_charts_drawn(report: dict, expected: dict[str, str]) -> None:
    """`expected` maps a plot id to the mark it must have drawn ("line", "symbol")."""
    for plot_id, mark in expected.items():
        plot = report["plots"].get(plot_id)
        assert plot is not None, f"no chart {plot_id!r}; charts: {sorted(report['plots'])}"
        assert "error" not in plot, f"vega-embed failed for {plot_id}: {plot['error']}"
        assert plot["marks"].get(mark, 0) > 0, f"{plot_id} drew no {mark}: {plot['marks']}"
        assert plot["painted"] > 0.01, f"{plot_id}: canvas is blank"
        assert_fits(report, plot_id)
