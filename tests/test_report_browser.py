"""The report as a reader's browser shows it: every page of the digits-tiny book, rendered by both
engines, opened in Chromium at desktop (1280 px) and phone (390 px) width and checked with axe-core
and with measurements of the laid-out page.

What is checked, on every page at both widths:

- axe-core (rules tagged wcag2a, wcag2aa and best-practice): no critical or serious violation,
  except those in :data:`ALLOWED`, each coming from Quarto's own template with the reason it stays;
- every element that scrolls sideways (``overflow-x`` auto or scroll, content wider than the box) can
  take keyboard focus (``tabindex="0"``) and has a name (``role="region"`` and ``aria-label``);
- at 390 px the page itself never scrolls sideways (``documentElement.scrollWidth`` <= the viewport);
- the verdict labels and the links inside table cells reach a contrast of 4.5:1 against the
  background they are drawn on, striped rows included (computed from ``getComputedStyle``: the
  cell's background colour and Bootstrap's row stripe, an inset box-shadow, composited over the
  page);
- the first Tab stop is a skip link into ``<main>``; the search box (Quarto's) shows a focus ring;
  no heading anchor is named only "Anchor";
- every ``<img>`` has alt text that says more than a file name.

Needs the ``playwright`` Python package (the ``test`` extra), a Chromium (``$DYNLOSS_CHROMIUM``, else
``/usr/bin/chromium``, else ``chromium`` on PATH: Playwright's own browser download is not used) and
axe-core's ``axe.min.js`` (``$DYNLOSS_AXE_JS``, else ``~/.cache/dynloss-ci/axe/node_modules/axe-core/``,
where ``.ci/run`` installs it with npm); without any of them the tests skip and say which is missing.
The Quarto half needs ``quarto`` on PATH (see tests/test_report_engine_parity.py). With
``$DYNLOSS_BROWSER_SHOTS`` set to a folder, a full-page screenshot of every page at both widths is
written there (``<engine>-<page>-<width>.png``) for a person to look at.

Slow: the digits-tiny results and both renders are the session's (tests/conftest.py).
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

WIDTHS = (1280, 390)
AXE_TAGS = ["wcag2a", "wcag2aa", "best-practice"]
MIN_CONTRAST = 4.5

#: axe rule id -> (CSS selector of the allowed elements, why the book cannot fix it). Only what
#: Quarto's own template renders and none of its options changes; each entry is matched on the
#: violating element's selector as axe reports it (``target``), so anything else still fails.
ALLOWED: dict[str, tuple[str, str]] = {}


def _chromium() -> str | None:
    for exe in (os.environ.get("DYNLOSS_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if exe and os.access(exe, os.X_OK):
            return exe
    return None


def _axe_js() -> Path | None:
    for path in (os.environ.get("DYNLOSS_AXE_JS"),
                 Path.home() / ".cache/dynloss-ci/axe/node_modules/axe-core/axe.min.js"):
        if path and Path(path).is_file():
            return Path(path)
    return None


def _missing() -> str | None:
    """Why the browser checks cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the `playwright` package is missing: pip install -e '.[test]'"
    if _chromium() is None:
        return "no Chromium: apt-get install chromium (or set $DYNLOSS_CHROMIUM to its executable)"
    if _axe_js() is None:
        return ("no axe-core: npm install --prefix ~/.cache/dynloss-ci/axe axe-core@4 "
                "(or set $DYNLOSS_AXE_JS to axe.min.js)")
    return None


#: measured in the page: elements that scroll sideways, the page's own width, contrast of verdicts
#: and table links against their composited background, and the images' alt text
MEASURE_JS = r"""
() => {
  const rgba = (c) => {
    const m = c.match(/^rgba?\(([^)]+)\)$/);
    if (!m) throw new Error('unparsed colour ' + c);
    const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (top, below) => {  // top composited over an opaque colour
    const a = top[3];
    return [0, 1, 2].map(i => top[i] * a + below[i] * (1 - a)).concat([1]);
  };
  const insetFills = (s) => {  // Bootstrap's row stripes and hovers: inset 0 0 0 9999px <colour>
    const out = [];
    for (const part of s.boxShadow.split(/,(?![^(]*\))/)) {
      const m = part.match(/(rgba?\([^)]*\)).*\b(\d{3,})px inset/);
      if (m) out.push(rgba(m[1]));
    }
    return out;
  };
  const background = (el) => {
    const chain = [];
    for (let e = el; e; e = e.parentElement) chain.unshift(e);
    let bg = [255, 255, 255, 1];
    for (const e of chain) {
      const s = getComputedStyle(e);
      bg = over(rgba(s.backgroundColor), bg);
      for (const fill of insetFills(s)) bg = over(fill, bg);
    }
    return bg;
  };
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  };
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  const hex = (c) => '#' + c.slice(0, 3).map(v => Math.round(v).toString(16).padStart(2, '0')).join('');
  const visible = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
  const describe = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
    (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\s+/).join('.') : '');

  const scrollers = [];
  for (const el of document.body.querySelectorAll('*')) {
    const s = getComputedStyle(el);
    if (!['auto', 'scroll'].includes(s.overflowX) || el.scrollWidth <= el.clientWidth + 1 || !visible(el)) continue;
    scrollers.push({what: describe(el), scrollWidth: el.scrollWidth, clientWidth: el.clientWidth,
                    tabindex: el.getAttribute('tabindex'), role: el.getAttribute('role'),
                    label: el.getAttribute('aria-label') || ''});
  }
  const contrast = [];
  const targets = document.querySelectorAll(
    '.verdict-holds, .verdict-fails, .verdict-conditional, td a, th a, td a code, th a code');
  for (const el of targets) {
    if (!visible(el) || !el.textContent.trim()) continue;
    const bg = background(el), fg = over(rgba(getComputedStyle(el).color), bg);
    const cell = el.closest('td, th');
    contrast.push({text: el.textContent.trim().slice(0, 40), what: describe(el), fg: hex(fg), bg: hex(bg),
                   ratio: ratio(fg, bg), striped: cell !== null && insetFills(getComputedStyle(cell))
                     .some(f => f[3] > 0)});
  }
  const images = [...document.images].map(img => ({
    src: (img.getAttribute('src') || '').slice(0, 120), alt: img.getAttribute('alt')}));
  const bareAnchors = [...document.querySelectorAll('a')].filter(a =>
    /^\s*anchor\s*$/i.test(a.getAttribute('aria-label') || (a.getAttribute('aria-labelledby') ? 'x' : a.textContent)))
    .map(describe);
  return {scrollers, contrast, images, bareAnchors, scrollWidth: document.documentElement.scrollWidth,
          viewport: window.innerWidth};
}
"""


def _serve(folder: Path):
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # the test's output is the findings, not the request log
        pass


def html_pages(out: Path) -> list[Path]:
    """The book's pages in an output folder (Quarto keeps ``reports/``; the offline engine does not)."""
    return sorted(p for p in out.rglob("*.html") if "site_libs" not in p.relative_to(out).parts)


def visit(out: Path, *, shots: Path | None = None, engine: str = "") -> dict[tuple[str, int], dict]:
    """Open every page of ``out`` at each of :data:`WIDTHS` over a local HTTP server and return, by
    (page path relative to ``out``, width), axe's violations and :data:`MEASURE_JS`'s measurements.
    With ``shots``, a full-page screenshot of each goes there too."""
    from playwright.sync_api import sync_playwright

    axe = _axe_js().read_text(encoding="utf-8")
    server = _serve(out)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    found: dict[tuple[str, int], dict] = {}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
            for width in WIDTHS:
                context = browser.new_context(viewport={"width": width, "height": 900})
                page = context.new_page()
                for path in html_pages(out):
                    rel = path.relative_to(out).as_posix()
                    page.goto(base + rel, wait_until="load")
                    page.evaluate("document.fonts.ready")
                    page.wait_for_timeout(200)  # the page's own scripts (Quarto's) settle after load
                    measured = page.evaluate(MEASURE_JS)
                    page.add_script_tag(content=axe)
                    result = page.evaluate("tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})",
                                           AXE_TAGS)
                    measured["violations"] = [
                        {"id": v["id"], "impact": v["impact"], "help": v["help"],
                         "targets": [" ".join(map(str, n["target"])) for n in v["nodes"]]}
                        for v in result["violations"]]
                    # after axe: focusing Quarto's search box leaves its autocomplete's ARIA state behind
                    measured["keyboard"] = _keyboard(page)
                    found[(rel, width)] = measured
                    if shots is not None:
                        shots.mkdir(parents=True, exist_ok=True)
                        name = f"{engine or 'book'}-{Path(rel).stem}-{width}.png"
                        page.screenshot(path=str(shots / name), full_page=True)
                context.close()
            browser.close()
    finally:
        server.shutdown()
    return found


#: what the keyboard reaches first, and whether a focused search box is drawn differently from an
#: unfocused one (outline or box-shadow, on the box or the form around it)
FOCUS_JS = r"""
() => {
  const el = document.activeElement;
  const href = el && el.href ? new URL(el.href) : null;  // Quarto writes in-page links as full URLs
  const here = href !== null && href.pathname === location.pathname && href.hash.length > 1;
  const target = here ? document.getElementById(decodeURIComponent(href.hash.slice(1))) : null;
  return {tag: el ? el.tagName.toLowerCase() : null, text: el ? el.textContent.trim() : '', href: href && href.href,
          targetExists: target !== null,
          targetInMain: target !== null && target.closest('main') !== null};
}
"""

RING_JS = r"""
(input) => {
  const ring = (el) => { const s = getComputedStyle(el); return [s.outlineStyle, s.outlineWidth, s.boxShadow].join(' '); };
  const box = input.closest('form') || input;
  return [ring(input), ring(box)].join(' | ');
}
"""


def _keyboard(page) -> dict:
    """The first element the Tab key reaches, and the search box's focus ring (None: no search box
    visible at this width)."""
    page.keyboard.press("Tab")
    first = page.evaluate(FOCUS_JS)
    page.evaluate("document.activeElement && document.activeElement.blur()")
    search = page.locator("#quarto-search input, input[type=search]")
    ring = None
    if search.count() and search.first.is_visible():
        before = search.first.evaluate(RING_JS)
        search.first.focus()
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("Tab")  # focused from the keyboard (:focus-visible)
        ring = {"unfocused": before, "focused": search.first.evaluate(RING_JS)}
        page.evaluate("document.activeElement && document.activeElement.blur()")
    return {"first": first, "search_ring": ring}


def serious_violations(found: dict) -> list[str]:
    """Critical and serious axe violations outside :data:`ALLOWED`, one line each."""
    bad = []
    for (rel, width), m in found.items():
        for v in m["violations"]:
            if v["impact"] not in ("critical", "serious"):
                continue
            allowed = ALLOWED.get(v["id"], (None, ""))[0]
            targets = [t for t in v["targets"] if not (allowed and re.search(allowed, t))]
            if targets:
                bad.append(f"{rel} @{width}px {v['id']} ({v['impact']}: {v['help']}): {targets[:4]}")
    return bad


def unreachable_scrollers(found: dict) -> list[str]:
    return [f"{rel} @{width}px {s}" for (rel, width), m in found.items() for s in m["scrollers"]
            if not (s["tabindex"] == "0" and s["role"] == "region" and s["label"].strip())]


def wide_bodies(found: dict) -> list[str]:
    return [f"{rel}: the page is {m['scrollWidth']} px wide in a {m['viewport']} px viewport"
            for (rel, width), m in found.items() if width == min(WIDTHS) and m["scrollWidth"] > m["viewport"]]


def low_contrast(found: dict) -> list[str]:
    return [f"{rel} @{width}px {c['text']!r} ({c['what']}) {c['fg']} on {c['bg']}: {c['ratio']:.2f}:1"
            for (rel, width), m in found.items() for c in m["contrast"] if c["ratio"] < MIN_CONTRAST]


def keyboard_problems(found: dict) -> list[str]:
    """Pages whose first Tab stop is not a skip link into the main content, whose search box looks
    the same focused and unfocused, or whose heading anchors are named only "Anchor"."""
    bad = []
    for (rel, width), m in found.items():
        first, ring = m["keyboard"]["first"], m["keyboard"]["search_ring"]
        if not (first["tag"] == "a" and "skip" in first["text"].lower() and first["targetInMain"]):
            bad.append(f"{rel} @{width}px: the first Tab stop is {first}, not a skip link into <main>")
        if ring is not None and ring["focused"] == ring["unfocused"]:
            bad.append(f"{rel} @{width}px: the focused search box shows no focus ring ({ring['focused']})")
        if m["bareAnchors"]:
            bad.append(f"{rel} @{width}px: {len(m['bareAnchors'])} links named only 'Anchor'")
    return bad


_FILE_NAME = re.compile(r"^[\w./-]+\.(png|svg|jpe?g|gif|webp)$", re.IGNORECASE)


def bad_alt_texts(found: dict) -> list[str]:
    """Images whose alt text is missing, empty, a file name or the figure's label, or under 4 words."""
    bad = []
    for (rel, width), m in found.items():
        if width != max(WIDTHS):  # the same images at every width
            continue
        for img in m["images"]:
            alt = (img["alt"] or "").strip()
            stem = Path(img["src"].split("?")[0]).stem if not img["src"].startswith("data:") else None
            if (not alt or _FILE_NAME.match(alt) or alt.lower() in {stem and stem.lower(), stem and f"{stem}.png"}
                    or re.fullmatch(r"fig-[\w-]+", alt) or len(alt.split()) < 4):
                bad.append(f"{rel}: <img src={img['src'][:60]!r}> alt={img['alt']!r}")
    return bad


ENGINES = ("offline", "quarto")


@pytest.fixture(scope="module", params=ENGINES)
def seen(request) -> tuple[str, dict]:
    """(engine, :func:`visit`'s findings) for the book as each engine renders it."""
    why = _missing()
    if why:
        pytest.skip(why)
    out = request.getfixturevalue(request.param)
    out = out[0] if isinstance(out, tuple) else out  # the quarto fixture also returns its log
    shots = os.environ.get("DYNLOSS_BROWSER_SHOTS")
    found = visit(out, shots=Path(shots) if shots else None, engine=request.param)
    assert len(found) == len(WIDTHS) * len(html_pages(out)) >= 2 * 9
    return request.param, found


def test_axe_finds_no_critical_or_serious_violation(seen):
    engine, found = seen
    assert serious_violations(found) == [], engine


def test_every_sideways_scrolling_element_is_focusable_and_named(seen):
    engine, found = seen
    assert unreachable_scrollers(found) == [], engine


def test_the_page_never_scrolls_sideways_at_phone_width(seen):
    engine, found = seen
    assert wide_bodies(found) == [], engine


def test_verdicts_and_table_links_reach_4_5_to_1_on_plain_and_striped_rows(seen):
    engine, found = seen
    checked = [c for m in found.values() for c in m["contrast"]]
    assert {"verdict" in c["what"] for c in checked} == {True, False}, "no verdict or no table link measured"
    if engine == "quarto":  # Bootstrap stripes Quarto's tables; the offline pages have plain rows only
        assert {c["striped"] for c in checked} == {True, False}
    assert low_contrast(found) == [], engine


def test_keyboard_users_skip_to_the_content_see_the_search_focus_and_hear_section_names(seen):
    engine, found = seen
    assert keyboard_problems(found) == [], engine


def test_every_image_has_alt_text_that_says_what_it_shows(seen):
    engine, found = seen
    assert sum(len(m["images"]) for m in found.values()) >= 8 * len(WIDTHS)
    assert bad_alt_texts(found) == [], engine
