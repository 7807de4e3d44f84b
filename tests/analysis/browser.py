"""Headless Chromium driven through its DevTools protocol (CDP), for the report tests.

Starts Debian's ``chromium`` with a fresh profile and no network features,
opens a page, and reports what a person would see go wrong: console errors,
uncaught exceptions, failed or non-local requests, images that did not
decode.  Talks CDP over the browser's own websocket (``websocket-client``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.interop.peers import _kill_group

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--remote-debugging-port=0", "--window-size=1200,900"]


@dataclass
class PageVisit:
    console_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    images: int = 0
    images_decoded: int = 0
    title: str = ""
    text: str = ""
    screenshot: bytes = b""


class Chromium:
    """One headless browser; use as a context manager."""

    def __init__(self, binary: str = "chromium") -> None:
        self.binary = shutil.which(binary) or binary
        self.profile = Path(tempfile.mkdtemp(prefix="dialsim-chromium-"))
        self.proc = subprocess.Popen([self.binary, *FLAGS, f"--user-data-dir={self.profile}",
                                      "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)  # its helpers die with it
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.05)
        self.port = int(port_file.read_text().split("\n")[0])
        self._id = 0

    def _page_ws(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=10) as r:
            targets = json.load(r)
        return next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")

    def visit(self, url: str, timeout: float = 30.0) -> PageVisit:
        """Load ``url`` in the page, wait for its load event, and look at it."""
        import websocket

        ws = websocket.create_connection(self._page_ws(), timeout=timeout, suppress_origin=True)
        seen = PageVisit()
        try:
            for method in ("Runtime.enable", "Log.enable", "Network.enable", "Page.enable"):
                self._call(ws, method, {}, seen)
            self._call(ws, "Page.navigate", {"url": url}, seen)
            self._until(ws, lambda m: m.get("method") == "Page.loadEventFired", seen, timeout)
            check = ("JSON.stringify({n: document.images.length, ok: Array.from(document.images)"
                     ".filter(i => i.complete && i.naturalWidth > 0).length, title: document.title,"
                     " text: document.body.innerText})")
            got = json.loads(self._call(ws, "Runtime.evaluate", {"expression": check,
                                                                  "returnByValue": True},
                                        seen)["result"]["value"])
            seen.images, seen.images_decoded = got["n"], got["ok"]
            seen.title, seen.text = got["title"], got["text"]
            shot = self._call(ws, "Page.captureScreenshot",
                              {"format": "png", "captureBeyondViewport": True}, seen)
            import base64

            seen.screenshot = base64.b64decode(shot["data"])
            self._drain(ws, seen, 0.3)
        finally:
            ws.close()
        return seen

    def _call(self, ws, method: str, params: dict, seen: PageVisit) -> dict:
        self._id += 1
        ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        reply = self._until(ws, lambda m, i=self._id: m.get("id") == i, seen, 30.0)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def _until(self, ws, done, seen: PageVisit, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = json.loads(ws.recv())
            self._note(msg, seen)
            if done(msg):
                return msg
        raise TimeoutError("no answer from chromium")

    def _drain(self, ws, seen: PageVisit, seconds: float) -> None:
        ws.settimeout(seconds)
        try:
            while True:
                self._note(json.loads(ws.recv()), seen)
        except Exception:  # noqa: BLE001 - the websocket's timeout ends the drain
            return

    @staticmethod
    def _note(msg: dict, seen: PageVisit) -> None:
        method, params = msg.get("method"), msg.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            seen.console_errors.append(json.dumps(params.get("args")))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            seen.console_errors.append(params["entry"].get("text", ""))
        elif method == "Runtime.exceptionThrown":
            seen.exceptions.append(json.dumps(params.get("exceptionDetails")))
        elif method == "Network.requestWillBeSent":
            seen.requests.append(params["request"]["url"][:80])
        elif method == "Network.loadingFailed":
            seen.failed_requests.append(params.get("errorText", ""))

    def close(self) -> None:
        _kill_group(self.proc)  # the browser and its renderer, GPU and zygote processes
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
