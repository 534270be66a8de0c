"""The rendered book in a real browser: headless Chromium (Debian's `chromium`) driven by
Playwright over every page, served from localhost with no internet.

Each page must load without console errors or failed requests, ask nothing of another host,
show every image, typeset its math and render its mermaid diagrams to SVG; the search finds
"softmax". Screenshots of three pages are kept in test-artifacts/browser/.
"""

from __future__ import annotations

import functools
import http.server
import re
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

from _browser import chromium, needs_chromium
from conftest import ROOT

ARTIFACTS = ROOT / "test-artifacts" / "browser"
SCREENSHOTS = ["book/intro.html", "chapters/01_softmax.html", "chapters/06_transformer.html"]

pytestmark = needs_chromium


PREFIX = "/attention-lab"  # where GitHub Pages serves the project's site (notfound_urls_prefix)


class _Pages(http.server.SimpleHTTPRequestHandler):
    """Serves the site under PREFIX, as GitHub Pages does, and the 404 page for what is missing."""

    def translate_path(self, path: str) -> str:
        if path.startswith(PREFIX + "/"):
            path = path[len(PREFIX):]
        return super().translate_path(path)

    def send_error(self, code, message=None, explain=None):  # the site's own 404 page
        page = Path(self.directory) / "404.html"
        if code != 404 or not page.exists():
            return super().send_error(code, message, explain)
        body = page.read_bytes()
        self.send_response(404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:  # keep the test output readable
        pass


@pytest.fixture(scope="module")
def site(html):
    handler = functools.partial(_Pages, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}{PREFIX}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def pages(html: Path) -> list[str]:
    skip = {"genindex.html", "search.html", "py-modindex.html"}
    return sorted(str(p.relative_to(html)) for p in html.rglob("*.html")
                  if "_static" not in p.parts and p.name not in skip)


def visit(browser, url: str, math: bool, screenshot: Path | None = None) -> dict:
    """Open a page; collect console errors, failed or foreign requests, broken images."""
    page = browser.new_page()
    problems: list[str] = []
    host = urlparse(url).netloc
    page.on("console", lambda m: m.type == "error" and "favicon.ico" not in m.location["url"]
            and problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"script error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))

    def on_response(response) -> None:
        # (a page without an icon of its own makes the browser ask for /favicon.ico)
        if response.status >= 400 and not url.endswith("/404.html") \
                and urlparse(response.url).path != "/favicon.ico":
            problems.append(f"HTTP {response.status}: {response.url}")

    def on_request(request) -> None:
        netloc = urlparse(request.url).netloc
        if request.url.startswith("http") and netloc != host:
            problems.append(f"asked another host: {request.url}")

    page.on("response", on_response)
    page.on("request", on_request)
    page.goto(url, wait_until="networkidle")
    if math:
        page.wait_for_function("document.querySelectorAll('mjx-container').length > 0",
                               timeout=30_000)
    mermaids = page.evaluate("document.querySelectorAll('pre.mermaid, div.mermaid').length")
    if mermaids:
        page.wait_for_function(
            "[...document.querySelectorAll('pre.mermaid, div.mermaid')]"
            ".every(e => e.querySelector('svg'))", timeout=30_000)
    broken = page.evaluate("[...document.images].filter(i => !(i.complete && i.naturalWidth > 0))"
                           ".map(i => i.src)")
    problems += [f"image did not load: {src}" for src in broken]
    no_alt = page.evaluate("[...document.querySelectorAll('main img')]"
                           ".filter(i => !i.alt || /\\.(png|svg|jpe?g)$/.test(i.alt))"
                           ".map(i => i.src)")
    problems += [f"image without alt text: {src}" for src in no_alt]
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=False)
    result = {"problems": problems, "math": math, "mermaids": mermaids,
              "images": page.evaluate("document.images.length")}
    page.close()
    return result


def test_every_page_loads_cleanly_offline(browser, site, html):
    found = pages(html)
    assert len(found) >= 30, found
    report, math_pages, mermaid_pages, images = {}, 0, 0, 0
    for rel in found:
        shot = ARTIFACTS / rel.replace("/", "_").replace(".html", ".png") \
            if rel in SCREENSHOTS else None
        math = 'class="math notranslate' in (html / rel).read_text()
        r = visit(browser, f"{site}/{rel}", math, shot)
        if r["problems"]:
            report[rel] = r["problems"][:5]
        math_pages += r["math"]
        mermaid_pages += r["mermaids"] > 0
        images += r["images"]
    assert report == {}, report
    assert math_pages >= 5 and mermaid_pages >= 1 and images >= 20, (math_pages, mermaid_pages,
                                                                     images)
    for rel in SCREENSHOTS:
        assert (ARTIFACTS / rel.replace("/", "_").replace(".html", ".png")).stat().st_size > 10_000


def test_search_finds_softmax(browser, site):
    page = browser.new_page()
    page.goto(f"{site}/search.html?q=softmax", wait_until="networkidle")
    page.wait_for_function("document.querySelectorAll('#search-results li').length > 0",
                           timeout=30_000)
    titles = page.eval_on_selector_all("#search-results li a", "els => els.map(e => e.href)")
    page.close()
    assert any("01_softmax" in t for t in titles), titles


def test_an_interactive_figure_responds_to_input(browser, site):
    """Chapter 1's softmax explorer runs in the static page: no kernel, no network."""
    page = browser.new_page()
    page.goto(f"{site}/chapters/01_softmax.html", wait_until="networkidle")
    root = page.locator(".attnlab-explorer").first

    def weights() -> list[float]:
        return [float(x) for x in root.locator("text.w").all_text_contents()]

    before = weights()
    root.locator("input[type=range]").fill("0.05")
    after = weights()
    page.close()
    assert len(before) == len(after) == 5
    assert abs(sum(before) - 1) < 0.01 and abs(sum(after) - 1) < 0.01
    assert max(after) > max(before) + 0.3, (before, after)  # a low temperature sharpens


def test_the_mask_and_head_explorers_respond(browser, site):
    page = browser.new_page()
    page.goto(f"{site}/chapters/03_scoring_functions.html", wait_until="networkidle")
    editor = page.locator(".attnlab-explorer").first
    note = editor.locator(".note")
    assert note.text_content().startswith("masked softmax: row sums 1.00, 1.00")
    editor.locator("rect.c").first.click()            # query 0 blocks its only key
    assert note.text_content().startswith("masked softmax: row sums 0.00, 1.00")
    editor.locator("button.none").click()
    assert "0.00" not in note.text_content()
    page.goto(f"{site}/chapters/16_attention_analysis.html", wait_until="networkidle")
    heads = page.locator(".attnlab-explorer").first

    def cells() -> list[str]:
        return heads.locator("rect.c").evaluate_all("rs => rs.map(r => r.dataset.w)")

    before = cells()
    heads.locator("select").nth(0).select_option("1")    # layer 2
    after = cells()
    page.close()
    assert len(before) == len(after) > 100 and before != after


def test_dark_mode_follows_the_reader_and_keeps_text_readable(browser, site):
    """With the system in dark mode the page turns dark, and the explorers' labels (SVG
    text, drawn in the colour of the text around them) contrast with what is behind them."""
    page = browser.new_page(color_scheme="dark")
    page.goto(f"{site}/chapters/01_softmax.html", wait_until="networkidle")
    theme = page.evaluate("document.documentElement.dataset.theme")

    def luminance(css_colour: str) -> float:
        r, g, b = (int(x) for x in re.findall(r"\d+", css_colour)[:3])
        return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255

    page_background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    label = page.locator(".attnlab-explorer svg text").first
    fill = label.evaluate("t => getComputedStyle(t).fill")
    behind = label.evaluate("""t => { for (let e = t; e; e = e.parentElement) {
        const c = getComputedStyle(e).backgroundColor;
        if (c && c !== "rgba(0, 0, 0, 0)" && c !== "transparent") return c; }
        return "rgb(255, 255, 255)"; }""")
    page.close()
    assert theme == "dark" and luminance(page_background) < 0.3, page_background
    assert abs(luminance(fill) - luminance(behind)) > 0.5, (fill, behind)
