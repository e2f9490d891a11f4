"""The live path in a real browser: JupyterLab (what `make lab` starts) serving a notebook that builds
`bumpdiff_core.present.widgets.Scrubber` on the session's tiny run; headless Chromium, driven over the
DevTools protocol, opens it, runs all cells, moves the scrubber's step slider, and checks that the
3D manifold figure shows the new checkpoint, that a click on a manifold point reaches the kernel, and
that the browser logged no error.

One JupyterLab server and one browser per module; everything lives in a temporary directory, and
the server is stopped in a `finally`. JupyterLab takes seconds to load, so every step waits on a
DOM / kernel condition (`wait`), never on a fixed sleep. Why the DevTools protocol and not
Playwright: see tests/browser_support.py.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from browser_support import BROWSER_MARKS, DevTools, chromium
from bumpdiff_core.results.schema import load_metrics
from reliability_support import wait_or_kill

LAB_TIMEOUT = 120  # seconds: JupyterLab's first load, a kernel start + torch import, on a busy 2-core machine

pytestmark = BROWSER_MARKS

NOTEBOOK_CELLS = [
    # the data root comes from the server's environment (BUMPDIFF_DATA), as with `make lab`
    "import os\n"
    "from pathlib import Path\n\n"
    "from bumpdiff_core.runs.store import Run\n"
    "from bumpdiff_core.present.widgets import Scrubber\n\n"
    "runs = sorted(p for p in (Path(os.environ['BUMPDIFF_DATA']) / 'runs').iterdir() if (p / 'COMPLETE').exists())\n"
    "assert len(runs) == 1, runs\n"
    "scrubber = Scrubber(Run.open(runs[0]))\n"
    "scrubber",
    "print('steps', scrubber.steps)",
    # a probe of the click path (browser -> FigureWidget -> Python); the Scrubber's own click
    # handling is tested through what it shows (the sample panel)
    "clicked = []\n"
    "scrubber.manifold_figure.data[0].on_click(lambda trace, points, state: clicked.append(list(points.point_inds)),\n"
    "                                          append=True)  # keep the Scrubber's own handlers",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kernel_name() -> str:
    """`bumpdiff`, the kernel `make env` registers and `make lab` uses; ipykernel's own otherwise."""
    from jupyter_client.kernelspec import KernelSpecManager

    return "bumpdiff" if "bumpdiff" in KernelSpecManager().find_kernel_specs() else "python3"


class Lab:
    def __init__(self, url: str, token: str, root: Path, log: Path):
        self.url, self.token, self.root, self.log = url, token, root, log

    def page(self, path: str) -> str:
        return f"{self.url}/{path}?token={self.token}"


@pytest.fixture(scope="module")
def lab(tiny_run, tmp_path_factory):
    """JupyterLab on a free 127.0.0.1 port with a random token, its root a temporary folder holding
    `scrub.ipynb`; isolated Jupyter config/runtime/settings folders, so nothing of the user's leaks in."""
    base = tmp_path_factory.mktemp("lab")
    root, home = base / "root", base / "jupyter"
    root.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in NOTEBOOK_CELLS])
    name = _kernel_name()
    nb.metadata["kernelspec"] = {"name": name, "display_name": name, "language": "python"}
    nbformat.write(nb, root / "scrub.ipynb")

    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, BUMPDIFF_DATA=str(tiny_run.path.parent.parent),
               JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(home / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
               PYTHONHASHSEED="0")
    env.pop("BUMPDIFF_STATIC_BOOK", None)  # the live scrubber, not the static book's note
    env.setdefault("NUMBA_CACHE_DIR", str(base / "numba_cache"))
    log = base / "jupyterlab.log"
    cmd = [str(Path(sys.executable).with_name("jupyter-lab")), "--no-browser",
           "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={token}",
           f"--MappingKernelManager.default_kernel_name={name}",
           "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: run commands, read kernel state
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.news_url=None"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.time() + LAB_TIMEOUT
        while True:
            try:
                opener.open(f"{url}/api/status?token={token}", timeout=5).read()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"JupyterLab did not start:\n{log.read_text()[-3000:]}") from None
                time.sleep(0.2)
        yield Lab(url, token, root, log)
    finally:
        proc.terminate()
        wait_or_kill(proc, 15)  # JupyterLab shuts its kernels down on SIGTERM


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with chromium(tmp_path_factory.mktemp("lab_chromium"), window="1400,1200") as tools:
        tools.call("Log.enable")  # failed requests and other browser-level errors
        yield tools


def browser_errors(browser: DevTools) -> list[str]:
    """Errors the page reported since the last call: console.error, uncaught exceptions, Log errors."""
    errors = [" ".join(str(a.get("value", a.get("description", ""))) for a in e["args"])
              for e in browser.drain("Runtime.consoleAPICalled") if e["type"] in ("error", "assert")]
    errors += [e["exceptionDetails"].get("exception", {}).get("description") or e["exceptionDetails"].get("text")
               for e in browser.drain("Runtime.exceptionThrown")]
    errors += [f"{e['entry'].get('url', '')}: {e['entry']['text']}" for e in browser.drain("Log.entryAdded")
               if e["entry"]["level"] == "error"]
    return errors


def wait(browser: DevTools, expression: str, what: str, lab: Lab, timeout: float = LAB_TIMEOUT):
    """Poll `expression` until it is truthy; a script error while the page (re)loads counts as not yet."""
    guarded = f"(() => {{ try {{ return {expression}; }} catch (e) {{ return null; }} }})()"
    deadline, value = time.time() + timeout, None
    while time.time() < deadline:
        try:
            value = browser.evaluate(guarded)
        except RuntimeError:  # e.g. the execution context was replaced by a navigation
            value = None
        if value:
            return value
        time.sleep(0.25)
    if not value:
        with contextlib.suppress(RuntimeError):
            value = browser.evaluate("({app: typeof window.jupyterapp, title: document.title, "
                                     "main: window.jupyterapp ? Array.from(window.jupyterapp.shell.widgets('main'))"
                                     ".map(w => w.constructor.name + ':' + w.title.label) : null})")
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (page: {value}); browser errors: "
                             f"{browser_errors(browser)}\nJupyterLab log tail:\n{lab.log.read_text()[-2000:]}")
    return value


# --- page scripts ---------------------------------------------------------------------------------

# the open notebook panel (found among the main area's widgets: `shell.currentWidget` follows the
# keyboard focus, which a headless window may never get)
NOTEBOOK = ("(window.jupyterapp && Array.from(window.jupyterapp.shell.widgets('main'))"
            ".find(w => w.sessionContext && w.content && w.content.widgets))")
KERNEL_IDLE = f"""(() => {{
  const w = {NOTEBOOK};
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!(k && k.connectionStatus === 'connected' && k.status === 'idle');
}})()"""

# the scrubber's 3D manifold: the one plotly div holding a scatter3d trace
MANIFOLD = """(() => {
  const gd = [...document.querySelectorAll('.js-plotly-plot')].find(g =>
      g._fullData && g._fullData.some(t => t.type === 'scatter3d'));
  if (!gd || !gd.querySelector('.gl-container, .plot-container')) return null;
  window.__manifold = gd;
  const t = gd._fullData.findIndex(d => d.type === 'scatter3d');
  return {trace: t, x: Array.from(gd._fullData[t].x).map(Number), title: (gd.layout.title || {}).text || ''};
})()"""

# the scrubber's sample panel: the plotly div with a heatmap titled "label <i> at step <s>: ..."
SAMPLE_PANEL = """(() => {
  const gd = [...document.querySelectorAll('.js-plotly-plot')].find(g => g._fullData &&
      g._fullData.some(t => t.type === 'heatmap') && /^label \\d+ at step/.test(((g.layout || {}).title || {}).text || ''));
  if (!gd) return null;
  const heat = gd._fullData.find(t => t.type === 'heatmap');
  const dot = gd._fullData.find(t => t.type === 'scatter');
  return {title: gd.layout.title.text, z: JSON.stringify(Array.from(heat.z, r => Array.from(r))),
          requested: [Number(dot.x[0]), Number(dot.y[0])]};
})()"""

CELLS_DONE = f"""(() => {{
  const w = {NOTEBOOK};
  const cells = w.content.widgets.filter(c => c.model.type === 'code');
  const counts = cells.map(c => c.model.executionCount);
  const errors = cells.flatMap(c => c.model.outputs.toJSON()).filter(o => o.output_type === 'error');
  if (errors.length) return {{error: errors.map(o => o.ename + ': ' + o.evalue).join('; ')}};
  return counts.every(n => n !== null) ? {{counts: counts}} : null;
}})()"""

SLIDER = """(() => {
  const s = [...document.querySelectorAll('.widget-slider')].find(el =>
      (el.querySelector('.widget-label') || {}).textContent === 'step');
  if (!s) return null;
  const rail = s.querySelector('.noUi-target, .slider-container');
  if (!rail) return null;
  rail.scrollIntoView({block: 'center'});
  const r = rail.getBoundingClientRect();
  const readout = s.querySelector('.widget-readout');
  return {left: r.left, right: r.right, y: r.top + r.height / 2, value: readout ? readout.textContent.trim() : null};
})()"""


def click(browser: DevTools, x: float, y: float) -> None:
    """A real mouse click at viewport coordinates (move, press, release)."""
    for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
        browser.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)


def kernel_output(browser: DevTools, code: str, lab: Lab) -> str:
    """Run `code` in the notebook's kernel (not as a cell) and return what it printed."""
    return browser.evaluate(f"""new Promise((resolve, reject) => {{
      const w = {NOTEBOOK}, out = [];
      const future = w.sessionContext.session.kernel.requestExecute({{code: {json.dumps(code)}, silent: false}});
      future.onIOPub = msg => {{ if (msg.header.msg_type === 'stream') out.push(msg.content.text); }};
      future.done.then(() => resolve(out.join('')), reject);
    }})""")


def click_plotly_point(browser: DevTools, figure_js: str, point: int, trace: int = 0) -> None:
    """Fire plotly's `plotly_click` on the figure `figure_js` (a JS expression for its div) for
    point `point` of trace `trace`, as plotly.js itself does on a click; a FigureWidget forwards it
    to the kernel (its Python `on_click` callbacks). Clicking a scatter3d point by mouse coordinates
    depends on the WebGL camera, so the event is emitted through plotly's own emitter instead."""
    browser.evaluate(f"""(() => {{
      const gd = {figure_js}, t = gd._fullData[{trace}], i = {point};
      const pt = {{curveNumber: {trace}, pointNumber: i, pointIndex: i, data: gd.data[{trace}], fullData: t,
                  x: t.x[i], y: t.y[i], z: t.z ? t.z[i] : undefined,
                  customdata: t.customdata ? t.customdata[i] : undefined}};
      gd.emit('plotly_click', {{points: [pt], event: new MouseEvent('click')}});
      return true;
    }})()""")


# --- the test -------------------------------------------------------------------------------------

def test_scrubber_runs_in_jupyterlab_and_its_slider_moves_the_manifold(lab, browser, tiny_run):
    started = time.perf_counter()
    browser_errors(browser)  # start clean
    browser.call("Page.navigate", url=lab.page("lab/tree/scrub.ipynb"))
    wait(browser, f"(() => {{ const w = {NOTEBOOK}; return !!(w && w.content && w.content.widgets "
                  f"&& w.content.widgets.length === {len(NOTEBOOK_CELLS)}); }})()", "the notebook to open", lab)
    wait(browser, KERNEL_IDLE, "the kernel to start", lab)
    # run every cell through the notebook's own action (what Run > Run All Cells does)
    browser.evaluate(f"(() => {{ const w = {NOTEBOOK}; w.content.activate(); "
                     "return window.jupyterapp.commands.execute('notebook:run-all-cells').then(() => true); })()")
    done = wait(browser, CELLS_DONE, "all cells to run", lab)
    assert "error" not in done, f"a cell failed: {done['error']}"
    wait(browser, KERNEL_IDLE, "the kernel to finish", lab)

    before = wait(browser, MANIFOLD, "the scrubber's 3D figure to render", lab)
    slider = wait(browser, SLIDER, "the scrubber's step slider", lab)
    steps = [int(s) for s in load_metrics(tiny_run)["step"]]
    assert slider["value"] == str(steps[-1]), slider  # the scrubber opens on the last checkpoint
    assert len(steps) >= 2

    # a click near the rail's left end: the slider jumps to the first checkpoint, the kernel
    # redraws and sends the new trace data to the browser
    click(browser, slider["left"] + 2, slider["y"])
    moved = f"""(() => {{
      const s = {SLIDER}, m = {MANIFOLD};
      return s && m && s.value === {json.dumps(str(steps[0]))} && m.title !== {json.dumps(before['title'])}
        && JSON.stringify(m.x) !== {json.dumps(json.dumps(before['x'], separators=(',', ':')))} ? m : null;
    }})()"""
    after = wait(browser, moved, f"the manifold to show step {steps[0]}", lab, timeout=60)
    assert after["x"] != before["x"]
    assert str(steps[0]) in after["title"]

    panel_before = wait(browser, SAMPLE_PANEL, "the scrubber's sample panel", lab)
    assert panel_before["title"].startswith(f"label 0 at step {steps[0]}"), panel_before["title"]

    # a click on a manifold point reaches the kernel (plotly_click -> FigureWidget -> on_click)
    click_plotly_point(browser, "window.__manifold", point=3, trace=after["trace"])
    deadline = time.time() + 30
    while "[3]" not in (printed := kernel_output(browser, "print(clicked)", lab)) and time.time() < deadline:
        time.sleep(0.25)
    assert "[3]" in printed, printed
    # ... and the Scrubber shows that label's sample large: its image, its requested centre, its caption
    shown = wait(browser, f"""(() => {{ const p = {SAMPLE_PANEL};
      return p && p.title.startsWith('label 3 at step {steps[0]}:') ? p : null; }})()""",
                 "the clicked label's sample in the sample panel", lab, timeout=30)
    assert shown["z"] != panel_before["z"]
    label = json.loads(kernel_output(browser, "import json; print(json.dumps(scrubber.view.evaluation("
                                              f"{steps[0]}).labels[3].tolist()))", lab))
    assert shown["requested"] == pytest.approx(label, abs=1e-3)
    assert ("bump" in shown["title"]) and ("accurate" in shown["title"])
    if os.environ.get("BUMPDIFF_SHOTS"):  # a screenshot of the scrubber after the click
        browser.evaluate("window.__manifold.scrollIntoView({block: 'start'})")
        shot = browser.call("Page.captureScreenshot", format="png")
        Path(os.environ["BUMPDIFF_SHOTS"]).mkdir(parents=True, exist_ok=True)
        (Path(os.environ["BUMPDIFF_SHOTS"]) / "live_scrubber_after_click.png").write_bytes(
            __import__("base64").b64decode(shot["data"]))

    errors = browser_errors(browser)
    assert not errors, errors
    # measured: ~15 s on a quiet 2-core machine, ~40 s with the machine shared (plus ~20 s for the
    # session's tiny run when this test creates it); a hang hidden by the generous waits fails here
    seconds = time.perf_counter() - started
    assert seconds < LAB_TIMEOUT, seconds
