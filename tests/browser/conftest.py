"""Fixtures of the browser suite: the real binary, a second origin for return_to and
framing, Debian's Chromium through Playwright, axe-core, screenshots and console checks."""

from __future__ import annotations

import atexit
import http.server
import json
import os
import shutil
import socket
import tempfile
import threading
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from mfa import ROOT, Service

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
BINARY = os.environ.get("MFA_BINARY", str(ROOT / "target/debug/mspbots-mfa"))
# Screenshots are taken on every run (so each screen is rendered at both widths), but kept in
# the repository only when asked: MFA_UI_SCREENSHOTS=docs/ui (relative to the repository's
# root) rewrites docs/ui/*.png; otherwise they go to a temporary directory.
if os.environ.get("MFA_UI_SCREENSHOTS"):
    SHOTS = ROOT / os.environ["MFA_UI_SCREENSHOTS"]
else:
    SHOTS = Path(tempfile.mkdtemp(prefix="mfa-browser-shots-"))
    atexit.register(shutil.rmtree, SHOTS, ignore_errors=True)
AXE = Path(__file__).with_name("node_modules") / "axe-core" / "axe.min.js"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Helper(http.server.BaseHTTPRequestHandler):
    """Another web site: where return_to sends the browser, and a page that frames /ui/."""

    def do_GET(self):  # noqa: N802
        if self.path.startswith("/embed"):
            src = self.path.split("src=", 1)[1] if "src=" in self.path else ""
            from urllib.parse import unquote
            body = ("<!doctype html><html lang=en><title>Embedding page</title><h1>Embedding page</h1>"
                    "<script>window.messages=[];addEventListener('message',e=>messages.push({origin:e.origin,data:e.data}));</script>"
                    f"<iframe id=mfa title='MSPbots 2FA' width=600 height=700 src=\"{unquote(src)}\"></iframe>")
        else:
            body = "<!doctype html><html lang=en><title>MSPbots</title><h1>MSPbots home</h1>"
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def helper():
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Helper)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://localhost:{port}"
    server.shutdown()


@pytest.fixture(scope="session")
def svc(helper):
    assert Path(CHROMIUM).exists(), f"no Chromium at {CHROMIUM}: install Debian's chromium package"
    assert Path(BINARY).exists(), f"no binary at {BINARY}: cargo build first"
    s = Service(BINARY, {"MFA_UI_EMBED_ORIGINS": helper, "MFA_UI_RETURN_ORIGINS": helper})
    yield s
    s.stop()


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        yield b
        b.close()


class Page:
    """A tab with its console, page errors and requests recorded."""

    def __init__(self, browser, svc):
        self.svc = svc
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=svc.base)
        self.page = self.context.new_page()
        self.console: list[str] = []
        self.requests: list[dict] = []
        self.page.on("console", lambda m: m.type == "error" and self.console.append(m.text))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        self.page.on("request", lambda r: self.requests.append({"url": r.url, "headers": r.headers}))

    def open(self, fragment: str) -> None:
        self.page.goto(f"{self.svc.base}/ui/#{fragment}")
        self.page.wait_for_selector("h1")

    def axe(self, name: str) -> None:
        """axe-core in the page: no WCAG 2.0/2.1/2.2 A or AA violation."""
        self.page.evaluate(AXE.read_text())
        violations = self.page.evaluate("""async () => {
            const r = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']}});
            return r.violations.map(v => ({id: v.id, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))}));
        }""")
        assert violations == [], f"{name}: {json.dumps(violations, indent=1)}"

    def shot(self, name: str) -> None:
        """SHOTS/NAME-390.png and NAME-1280.png, then back to the desktop width."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        for width in (390, 1280):
            self.page.set_viewport_size({"width": width, "height": 844 if width == 390 else 900})
            self.page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
        # No horizontal scrolling of the page itself at 320 px.
        self.page.set_viewport_size({"width": 320, "height": 700})
        overflow = self.page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{name}: the page scrolls sideways by {overflow} px at 320 px"
        self.page.set_viewport_size({"width": 1280, "height": 900})

    def check(self, name: str) -> None:
        self.axe(name)
        self.shot(name)

    def errors(self) -> list[str]:
        # The browser logs every 4xx answer of fetch() as "Failed to load resource": those are
        # the API's expected answers (a wrong code is a 400), shown to the user as sentences.
        return [c for c in self.console if "Failed to load resource: the server responded with a status of 4" not in c]


@pytest.fixture
def tab(browser, svc):
    t = Page(browser, svc)
    yield t
    assert t.errors() == [], f"console errors or CSP violations: {t.errors()}"
    t.context.close()
