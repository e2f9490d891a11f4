"""The built book in a real browser: Debian's headless Chromium, driven over the DevTools protocol,
loads every page from 127.0.0.1 and checks that plotly figures render, that dragging the manifold
slider changes the displayed frame, and that nothing is requested from outside 127.0.0.1.

The book is built once per session from the `book-tiny` sweep (fixture `tiny_book`, conftest.py).
"""
from __future__ import annotations

import json
import re
import time
import urllib.parse
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from browser_support import PAGE_TIMEOUT, DevTools, chromium, needs_chromium, serve


# ---------------------------------------------------------------------------------------------
# the book on disk
# ---------------------------------------------------------------------------------------------

def toc_pages(book: Path) -> list[str]:
    toc = yaml.safe_load((book / "_toc.yml").read_text())
    return [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]


def test_book_has_every_page_of_the_sweep(tiny_book):
    from bumpdiff_core.sweeps.definitions import SWEEPS

    pages = toc_pages(tiny_book.book)
    sweep = SWEEPS["book-tiny"]
    expected = ["intro"] + [f"generated/{p}" for p in ("findings", "data", "phases", "phase_diagram", "imbalanced", "efficiency", "appendix")] \
        + ["methods", "reproduce"] + [f"generated/runs/{r.run_id}" for r in sweep.runs()]
    assert pages == expected
    for page in pages:
        assert (tiny_book.html / f"{page}.html").is_file(), page
    timings = json.loads((tiny_book.book / "generated" / "timings.json").read_text())
    assert timings["train_stage_seconds"] > 0 and timings["analysis_stage_seconds"] > 0


def test_findings_page_states_a_verdict_per_claim(tiny_book):
    """The 'What reproduced' page carries one computed verdict per claim (`verdicts.judge`)."""
    from bumpdiff_core.claims import verdicts

    html = (tiny_book.html / "generated" / "findings.html").read_text()
    assert verdicts.CLAIMS["phases"] in html and verdicts.CLAIMS["fig5_coupling"].split(":")[0] in html
    cells = re.findall(r"<td[^>]*>\s*(" + "|".join(verdicts.VERDICTS) + r")\s*</td>", html)
    assert len(cells) >= len(verdicts.CLAIMS), cells  # the claims table (+ the sensitivity matrix)
    assert "5-fold" not in html


def test_plotly_js_is_served_once_not_inlined(tiny_book):
    """Each figure page loads the site's one plotly.min.js instead of carrying ~4.8 MB itself."""
    served = tiny_book.html / "_static" / "plotly.min.js"
    assert served.stat().st_size > 1_000_000
    figure_pages = [p for p in toc_pages(tiny_book.book)
                    if "plotly-graph-div" in (tiny_book.html / f"{p}.html").read_text()]
    assert len(figure_pages) >= 6
    for page in figure_pages:
        html = (tiny_book.html / f"{page}.html").read_text()
        assert re.search(r'<script src="[./]*_static/plotly\.min\.js"', html), page
        assert "plotly.js v" not in html, f"{page} inlines plotly.js"


def test_efficiency_page_has_its_figures_and_the_memoriser(tiny_book):
    """The efficiency page: >= 3 interactive figures (designs, seen vs unseen, per-position maps),
    the memoriser beside every unseen accuracy, and the Fig. 5 control's reading."""
    html = (tiny_book.html / "generated" / "efficiency.html").read_text()
    assert html.count('class="plotly-graph-div"') >= 3
    assert "memoriser (unseen)" in html and "Training-set designs" in html
    assert "reads **" not in html and ("reads <strong>" in html or "needs both models" in html)
    # no scaling runs in this data root: the page shows the committed results/scaling.json and says so
    text = re.sub(r"<[^>]+>", "", html)  # code spans split words into <span>s
    assert "Shown: the committed results/scaling.json" in text and "bumpdiff report scaling --json" in text


class _ResourceLinks(HTMLParser):
    """URLs that a browser fetches on its own (not <a href>: those are links a reader may follow)."""
    FETCHED = {"script": "src", "img": "src", "iframe": "src", "source": "src", "video": "src",
               "audio": "src", "embed": "src", "object": "data", "link": "href"}

    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "link" and (attrs.get("rel") or "") in ("canonical", "alternate"):
            return
        url = attrs.get(self.FETCHED.get(tag, ""))
        if url:
            self.urls.append(url)


def _is_local(url: str) -> bool:
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme in ("data", "blob", "about", "chrome-error", "devtools"):
        return True
    if not parsed.scheme and not parsed.netloc:
        return True  # relative: served by the same site
    return parsed.hostname == "127.0.0.1"


def test_pages_reference_no_outside_resources(tiny_book):
    for page in toc_pages(tiny_book.book):
        parser = _ResourceLinks()
        parser.feed((tiny_book.html / f"{page}.html").read_text())
        outside = [u for u in parser.urls if not _is_local(u)]
        assert not outside, f"{page} loads {outside}"


@pytest.fixture(scope="module")
def site(tiny_book):
    with serve(tiny_book.html) as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with chromium(tmp_path_factory.mktemp("chromium_profile")) as tools:
        yield tools


RENDERED = """(() => {
  const divs = [...document.querySelectorAll('.plotly-graph-div')];
  return {figures: divs.length,
          rendered: divs.filter(d => d.classList.contains('js-plotly-plot') && d.querySelector('.plot-container')).length,
          plotly: typeof window.Plotly};
})()"""


def _visit(browser: DevTools, url: str) -> dict:
    browser.drain("Page.loadEventFired")
    browser.call("Page.navigate", url=url)
    deadline = time.time() + PAGE_TIMEOUT
    while not browser.drain("Page.loadEventFired"):
        if time.time() > deadline:
            raise TimeoutError(f"{url} did not load")
        browser.call("Runtime.evaluate", expression="1")  # pumps events
        time.sleep(0.1)
    state = browser.wait_for(f"(() => {{ const s = {RENDERED}; return s.rendered === s.figures ? s : null; }})()")
    return state or browser.evaluate(RENDERED)


@pytest.fixture(scope="module")
def visits(browser, site, tiny_book):
    """Every page of the book loaded once: figures found and rendered, requests, script errors."""
    out = {}
    browser.drain("Network.requestWillBeSent")
    browser.drain("Runtime.exceptionThrown")
    for page in toc_pages(tiny_book.book):
        state = _visit(browser, f"{site}/{page}.html")
        state["requests"] = [e["request"]["url"] for e in browser.drain("Network.requestWillBeSent")]
        state["exceptions"] = [e["exceptionDetails"].get("exception", {}).get("description")
                               or e["exceptionDetails"].get("text") for e in browser.drain("Runtime.exceptionThrown")]
        out[page] = state
    return out


@needs_chromium
def test_every_figure_page_renders_its_plotly_figures(visits, tiny_book):
    figure_pages = 0
    for page, state in visits.items():
        in_html = (tiny_book.html / f"{page}.html").read_text().count('class="plotly-graph-div"')
        assert state["figures"] == in_html, page
        if in_html:
            figure_pages += 1
            assert state["plotly"] == "object", f"{page}: plotly.js did not load"
            assert state["rendered"] == in_html, f"{page}: {state['rendered']} of {in_html} figures rendered"
    assert figure_pages >= 6  # data, phases, phase diagram, imbalanced, appendix, runs


@needs_chromium
def test_pages_run_without_script_errors(visits):
    errors = {page: s["exceptions"] for page, s in visits.items() if s["exceptions"]}
    assert not errors


@needs_chromium
def test_pages_request_nothing_outside_localhost(visits):
    requests = [u for s in visits.values() for u in s["requests"]]
    assert any(u.endswith("/_static/plotly.min.js") for u in requests)
    outside = sorted({u for u in requests if not _is_local(u)})
    assert not outside, outside


# plotly.py sends numpy arrays as base64 ({dtype, bdata}); plotly.js decodes them into _fullData
DECODE = """function decode(v) {
  if (v && v.bdata !== undefined) {
    const T = {f4: Float32Array, f8: Float64Array, i1: Int8Array, u1: Uint8Array, i2: Int16Array,
               u2: Uint16Array, i4: Int32Array, u4: Uint32Array}[v.dtype];
    const bin = atob(v.bdata), bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return Array.from(new T(bytes.buffer));
  }
  return Array.from(v);
}"""

MANIFOLD = """(() => {
  const gd = [...document.querySelectorAll('.js-plotly-plot')].find(g =>
      g.layout && g.layout.sliders && g.layout.sliders.length && g._transitionData &&
      g._transitionData._frames.length > 1 && g.data.some(t => t.type === 'scatter3d'));
  if (!gd) return null;
  window.__manifold = gd;
  const slider = gd.layout.sliders[0];
  const trace = gd.data.findIndex(t => t.type === 'scatter3d');
  return {steps: slider.steps.map(s => s.args[0][0]), active: slider.active, trace: trace,
          x: Array.from(gd._fullData[trace].x), title: gd.layout.title.text,
          frames: gd._transitionData._frames.map(f => f.name)};
})()"""


@needs_chromium
def test_moving_the_manifold_slider_changes_the_displayed_frame(browser, site, visits):
    _visit(browser, f"{site}/generated/phases.html")
    before = browser.evaluate(MANIFOLD)
    assert before is not None, "no 3D figure with frames and a slider on the phases page"
    steps = before["steps"]
    assert len(steps) >= 3 and set(steps) <= set(before["frames"])
    active = before["active"] if before["active"] is not None else 0
    target = 0 if active >= len(steps) / 2 else len(steps) - 1
    rail = browser.evaluate("""(() => {
      const gd = window.__manifold; gd.scrollIntoView({block: 'center'});
      const r = gd.querySelector('.slider-rail-touch-rect').getBoundingClientRect();
      return {left: r.left, right: r.right, y: r.top + r.height / 2};
    })()""")
    x = rail["left"] + 3 if target == 0 else rail["right"] - 3
    for kind in ("mouseMoved", "mousePressed", "mouseReleased"):  # a real click on the slider rail
        browser.call("Input.dispatchMouseEvent", type=kind, x=x, y=rail["y"], button="left", clickCount=1)
    moved = f"""(() => {{
      {DECODE}
      const gd = window.__manifold, trace = {before['trace']};
      const frame = gd._transitionData._frames.find(f => f.name === {json.dumps(steps[target])});
      const k = (frame.traces || [...frame.data.keys()]).indexOf(trace);
      const shown = Array.from(gd._fullData[trace].x), want = decode(frame.data[k].x);
      const same = shown.length === want.length && shown.every((v, i) => Math.abs(v - want[i]) < 1e-6);
      return gd.layout.sliders[0].active === {target} && same ? {{x: shown, title: gd.layout.title.text}} : null;
    }})()"""
    after = browser.wait_for(moved, timeout=20)
    assert after is not None, "the figure did not move to the clicked checkpoint's frame"
    assert after["x"] != before["x"]
    assert after["title"] != before["title"]


# ---------------------------------------------------------------------------------------------
# linked views and the data behind the figures (issue 9)
# ---------------------------------------------------------------------------------------------

def _download_links(html: str) -> list[str]:
    return re.findall(r'<a href="([^"]+)" download="[^"]+" class="bumpdiff-download"', html)


def test_phases_page_links_data_files_that_exist_in_the_site(tiny_book):
    import io

    import pandas as pd

    page = tiny_book.html / "generated" / "phases.html"
    links = _download_links(page.read_text())
    assert {link.rsplit("/", 1)[-1] for link in links} >= {"metrics.csv", "embeddings.csv"}, links
    for link in links:
        assert (page.parent / link).is_file(), link
    metrics = pd.read_csv(page.parent / next(link for link in links if link.endswith("metrics.csv")))
    embeddings = pd.read_csv(io.BytesIO((page.parent / next(l for l in links if l.endswith("embeddings.csv"))).read_bytes()))
    assert {"step", "accuracy", "phase"} <= set(metrics.columns)
    assert set(embeddings["step"]) == set(metrics["step"]) and {"aligned_1", "bump_count"} <= set(embeddings.columns)
    for name in ("data", *[p for p in toc_pages(tiny_book.book) if p.startswith("generated/runs/")]):
        other = tiny_book.html / (name if name.startswith("generated/") else f"generated/{name}")
        other = other.with_suffix(".html")
        found = _download_links(other.read_text())
        assert found and all((other.parent / link).is_file() for link in found), other


CLICK_MANIFOLD = """(() => {
  const gd = [...document.querySelectorAll('.js-plotly-plot')].find(g =>
      g.layout && g.layout.meta && g.layout.meta.bumpdiff_samples);
  if (!gd || !gd.__bumpdiffClick) return null;   // the click script has attached itself
  window.__linked = gd;
  const info = gd.layout.meta.bumpdiff_samples;
  const heat = gd._fullData[info.heatmap];
  return {z: JSON.stringify(Array.from(heat.z, r => Array.from(r))),
          caption: gd.layout.annotations[info.caption].text, steps: info.steps, size: info.size,
          trace: gd.data.findIndex(t => t.type === 'scatter3d' && t.visible !== false)};
})()"""


@needs_chromium
def test_clicking_a_manifold_point_in_the_book_shows_its_sample(browser, site, visits, tiny_book):
    import base64
    import os

    _visit(browser, f"{site}/generated/phases.html")
    before = browser.wait_for(CLICK_MANIFOLD, timeout=20)
    assert before is not None, "no manifold figure with samples and an attached click script on the phases page"
    label = 3
    browser.evaluate(f"""(() => {{
      const gd = window.__linked, t = gd._fullData[{before['trace']}], i = {label};
      gd.scrollIntoView({{block: 'start'}});
      gd.emit('plotly_click', {{points: [{{curveNumber: {before['trace']}, pointNumber: i, data: gd.data[{before['trace']}],
        fullData: t, x: t.x[i], y: t.y[i], z: t.z[i], customdata: t.customdata[i]}}], event: new MouseEvent('click')}});
      return true;
    }})()""")  # plotly's own event, as a click on the WebGL point emits it (picking depends on the camera)
    step = before["steps"][-1]  # the figure opens at the last checkpoint
    after = browser.wait_for(f"""(() => {{
      const gd = window.__linked, info = gd.layout.meta.bumpdiff_samples;
      if (gd.getAttribute('data-bumpdiff-shown') !== '{step}:{label}') return null;
      return {{z: Array.from(gd._fullData[info.heatmap].z, r => Array.from(r)),
               caption: gd.layout.annotations[info.caption].text,
               requested: [gd._fullData[info.requested].x[0], gd._fullData[info.requested].y[0]]}};
    }})()""", timeout=20)
    assert after is not None, "the sample panel did not update after the click"
    assert after["caption"].startswith(f"label {label} at step {step}:") and "bump" in after["caption"]
    # the panel shows exactly that label's pixels, as evaluated
    from bumpdiff_core.present import figures
    from bumpdiff_core.sweeps.definitions import SWEEPS
    from bumpdiff_core.results.view import completed_view

    view = completed_view(SWEEPS["book-tiny"].main_run(), tiny_book.data_root)
    ev = view.evaluation(step)
    assert after["z"] == figures.to_uint8(ev.samples[label]).tolist()
    assert after["requested"] == [float(v) for v in ev.labels[label]]
    assert after["z"] != json.loads(before["z"])
    if os.environ.get("BUMPDIFF_SHOTS"):
        shot = browser.call("Page.captureScreenshot", format="png")
        Path(os.environ["BUMPDIFF_SHOTS"]).mkdir(parents=True, exist_ok=True)
        (Path(os.environ["BUMPDIFF_SHOTS"]) / "book_phases_after_click.png").write_bytes(base64.b64decode(shot["data"]))
    errors = [e["exceptionDetails"].get("text") for e in browser.drain("Runtime.exceptionThrown")]
    assert not errors, errors


def test_each_page_reads_only_runs_of_the_roles_it_declares(tiny_book):
    """The sweep logs the runs each page opens (runs.store.completed_run); every one of them is
    among the page's declared inputs, so a page is never judged fresh while a run it read changed."""
    from bumpdiff_core.sweeps.definitions import get_sweep

    for page in get_sweep("book-tiny").page_specs():
        log = tiny_book.book / "generated" / ".reads" / f"{page.name}.txt"
        read = set(log.read_text().split()) if log.exists() else set()
        declared = {s.run_id for s in page.needs}
        assert read <= declared, (page.name, read - declared)
        assert bool(read) == bool(declared), page.name
