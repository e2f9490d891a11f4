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
    from bumpdiff_core.sweep import SWEEPS

    pages = toc_pages(tiny_book.book)
    sweep = SWEEPS["book-tiny"]
    expected = ["intro"] + [f"generated/{p}" for p in ("findings", "data", "phases", "phase_diagram", "imbalanced", "appendix")] \
        + ["reproduce"] + [f"generated/runs/{r.run_id}" for r in sweep.runs()]
    assert pages == expected
    for page in pages:
        assert (tiny_book.html / f"{page}.html").is_file(), page
    timings = json.loads((tiny_book.book / "generated" / "timings.json").read_text())
    assert timings["train_stage_seconds"] > 0 and timings["analysis_stage_seconds"] > 0


def test_findings_page_states_a_verdict_per_claim(tiny_book):
    """The 'What reproduced' page carries one computed verdict per testable claim."""
    from bumpdiff_core import analysis

    html = (tiny_book.html / "generated" / "findings.html").read_text()
    assert "Training passes through three phases" in html and "Fig. 5: on imbalanced data" in html
    verdicts = (analysis.REPRODUCED, analysis.PARTLY, analysis.NOT_REPRODUCED, analysis.NOT_TESTED)
    cells = re.findall(r"<td[^>]*>\s*(" + "|".join(verdicts) + r")\s*</td>", html)
    assert len(cells) == 8, cells  # 5 claims of the default run + Fig. 4 + Fig. 5 (accuracy, R²)


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
