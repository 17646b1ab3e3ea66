"""A headless Chromium driven over the DevTools protocol (for the viewer's browser test and its
README screenshot). Chromium is the Debian package (scripts/ensure_chromium.sh installs it); the
protocol is spoken with the `websockets` package (a dependency of viser), so no chromedriver.
"""
from __future__ import annotations

import base64
import itertools
import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
# WebGL without a GPU: SwiftShader (Chromium's CPU GL), which newer Chromium only uses when asked.
GL_FLAGS = ("--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist")


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """One headless Chromium with one page. `with Browser(w, h) as b: b.open(url); b.screenshot()`."""

    def __init__(self, width: int = 1024, height: int = 640, timeout_s: float = 60.0):
        exe = find_chromium()
        if exe is None:
            raise RuntimeError("no Chromium found: run scripts/ensure_chromium.sh (installs Debian's chromium)")
        self._profile = tempfile.mkdtemp(prefix="gsenv-chromium-")
        args = [exe, "--headless=new", "--no-sandbox", "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--disable-background-networking", "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0", f"--user-data-dir={self._profile}",
                f"--window-size={width},{height}", *GL_FLAGS, "about:blank"]
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self._ids = itertools.count(1)
        self.timeout_s = timeout_s
        try:
            port = self._devtools_port()
            page = self._page_url(port)
            from websockets.sync.client import connect

            self._ws = connect(page, max_size=64 * 1024 * 1024, open_timeout=timeout_s)
            self.call("Page.enable")
            self.call("Runtime.enable")
        except BaseException:
            self.close()
            raise

    def _devtools_port(self) -> int:
        deadline = time.monotonic() + self.timeout_s
        lines = []
        while time.monotonic() < deadline:
            line = self._proc.stderr.readline()
            if not line and self._proc.poll() is not None:
                break
            lines.append(line)
            m = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if m:
                return int(m.group(1))
        raise RuntimeError("Chromium did not start its DevTools server:\n" + "".join(lines[-20:]))

    @staticmethod
    def _page_url(port: int) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            targets = json.loads(r.read())
        return next(t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page")

    def call(self, method: str, **params):
        """One DevTools command; its result (events that arrive meanwhile are dropped)."""
        msg_id = next(self._ids)
        self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout_s
        while True:
            reply = json.loads(self._ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (awaited when it is a promise)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"JavaScript error: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float | None = None, what: str = ""):
        """Poll a JavaScript expression until it is truthy; its value."""
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.25)
        raise TimeoutError(f"the page never showed {what or expression}")

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete'", what="a loaded document")

    def click_button(self, label: str) -> None:
        """Click the page's button whose text is `label`."""
        js = (f"(() => {{ const b = [...document.querySelectorAll('button')]"
              f".find(e => e.textContent.trim() === {json.dumps(label)});"
              " if (!b) return false; b.click(); return true; })()")
        if not self.evaluate(js):
            raise RuntimeError(f"no button {label!r} in the page")

    def screenshot(self):
        """uint8 [H, W, 3] numpy array of the page as drawn."""
        import io

        import imageio.v3 as iio

        png = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        return iio.imread(io.BytesIO(png))[..., :3]

    def close(self) -> None:
        ws = getattr(self, "_ws", None)
        if ws is not None:
            ws.close()
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc.stderr:
            self._proc.stderr.close()
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def chromium_missing_reason() -> str | None:
    """Why the browser test cannot run here, or None."""
    if find_chromium() is None:
        return "no Chromium on this machine (scripts/ensure_chromium.sh installs Debian's chromium; needs root)"
    return None
