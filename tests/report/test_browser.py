"""The reports in a real browser: headless Chromium loads them from disk; every image decodes and
nothing is logged as an error.

How: the report is copied next to itself with a small harness script injected at the top of
``<head>`` (the reports have no scripts of their own). The harness records ``error`` events (in the
capture phase, so failed image loads count too) and ``console.error`` calls, and on ``load`` writes
``{n_images, bad, widths, errors}`` as JSON into a ``<pre id="__check">``; ``chromium --dump-dom``
prints the DOM after the page has loaded. Two must-fail pages (a corrupt PNG, a console error)
prove that the harness sees failures.

Chromium is Debian's ``chromium`` package. When it is missing the test installs it with apt-get
only if ``CI=true`` or ``BAYESMOE_INSTALL_CHROMIUM=1``; otherwise it is skipped with the reason.
"""

import html
import json
import os
import re
import shutil
import subprocess

import pytest

_HARNESS = """<script>
window.__errors = [];
window.addEventListener('error', function (e) {
  var t = e.target && e.target !== window ? (e.target.alt || e.target.tagName) : '';
  window.__errors.push('error: ' + (e.message || ('failed to load ' + t)));
}, true);
var __ce = console.error;
console.error = function () {
  window.__errors.push('console.error: ' + Array.prototype.join.call(arguments, ' '));
  __ce.apply(console, arguments);
};
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var out = document.createElement('pre');
  out.id = '__check';
  out.textContent = JSON.stringify({
    n_images: imgs.length,
    widths: imgs.map(function (i) { return i.naturalWidth; }),
    bad: imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
             .map(function (i) { return i.alt; }),
    errors: window.__errors});
  document.body.appendChild(out);
});
</script>"""

_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=10000",
]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI") == "true" or os.environ.get("BAYESMOE_INSTALL_CHROMIUM") == "1":
        subprocess.run(["apt-get", "update", "-q"], check=False, capture_output=True)
        res = subprocess.run(
            ["apt-get", "install", "-y", "-q", "chromium"], capture_output=True, text=True
        )
        path = shutil.which("chromium")
        if path:
            return path
        pytest.skip(f"chromium could not be installed with apt-get: {res.stderr[-300:]}")
    pytest.skip(
        "chromium is not installed (Debian package `chromium`); install it, or set "
        "BAYESMOE_INSTALL_CHROMIUM=1 (or CI=true) to let this test install it"
    )


@pytest.fixture(scope="module")
def chromium():
    return _chromium()


def _check_in_browser(chromium: str, page, tmp_path) -> dict:
    """Load `page` (with the harness) in headless Chromium and return the harness's record."""
    text = page.read_text()
    harnessed = page.with_name(f"__harness_{page.name}")
    harnessed.write_text(text.replace("<head>", "<head>" + _HARNESS, 1))
    profile = tmp_path / f"profile-{page.stem}"
    try:
        res = subprocess.run(
            [
                chromium,
                *_FLAGS,
                f"--user-data-dir={profile}",
                "--dump-dom",
                harnessed.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        harnessed.unlink()
    m = re.search(r'<pre id="__check">(.*?)</pre>', res.stdout, re.S)
    assert m, f"the harness did not report (exit {res.returncode}): {res.stderr[-1500:]}"
    return json.loads(html.unescape(m.group(1)))


def test_fit_report_renders_in_chromium(chromium, fit_report, tmp_path):
    rec = _check_in_browser(chromium, fit_report, tmp_path)
    assert rec["n_images"] == fit_report.read_text().count("<img") == 5
    assert rec["bad"] == [] and rec["errors"] == []
    assert all(w > 100 for w in rec["widths"])


def test_study_report_and_a_linked_fit_page_render(chromium, study_report, tmp_path):
    rec = _check_in_browser(chromium, study_report, tmp_path)
    assert rec["n_images"] == 2 and rec["bad"] == [] and rec["errors"] == []
    page = study_report.parent / "tasks" / "n150-rep0-K3" / "report.html"
    rec = _check_in_browser(chromium, page, tmp_path)
    assert rec["n_images"] == 5 and rec["bad"] == [] and rec["errors"] == []


def test_the_harness_sees_broken_images_and_console_errors(chromium, tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>"
        "<img src='data:image/png;base64,bm90IGEgcG5n' alt='corrupt'>"
        "<script>console.error('boom')</script></body></html>"
    )
    rec = _check_in_browser(chromium, bad, tmp_path)
    assert rec["bad"] == ["corrupt"]
    assert any("boom" in e for e in rec["errors"])
    assert any("corrupt" in e for e in rec["errors"])
