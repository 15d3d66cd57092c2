"""Headless Chromium (Debian's `chromium`) driven over the DevTools protocol: just what the
browser login scenario needs — navigate, evaluate, wait for a condition, screenshot.

The browser runs with a throw-away profile, and every host but 127.0.0.1 resolves to nothing
(the pages under test load nothing from elsewhere; the IdP's login page asks for a web font).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx2 as httpx
import websockets


def find_chromium() -> str | None:
    return next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


class Chromium:
    def __init__(self, binary: str, log: Path):
        self.profile = tempfile.mkdtemp(prefix="mcpgate-chromium-")
        self.log = open(log, "w")
        self.proc = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             "--remote-debugging-port=0", "--remote-allow-origins=*", f"--user-data-dir={self.profile}",
             "--window-size=900,820", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", "about:blank"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.ids = itertools.count(1)
        self.ws = None
        # What the browser reported on its own (console, CSP and network errors): shown on failure.
        self.messages: list[str] = []

    async def __aenter__(self) -> "Chromium":
        port = await self._devtools_port()
        deadline = time.time() + 20
        while True:
            pages = [t for t in httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=5).json() if t["type"] == "page"]
            if pages or time.time() > deadline:
                break
            await asyncio.sleep(0.1)
        self.ws = await websockets.connect(pages[0]["webSocketDebuggerUrl"], max_size=64 * 1024 * 1024)
        await self.send("Page.enable")
        await self.send("Runtime.enable")
        await self.send("Log.enable")
        return self

    async def __aexit__(self, *exc) -> None:
        if self.ws is not None:
            await self.ws.close()
        # Its own process group: the renderer and helper processes go with it, stragglers killed.
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    async def _devtools_port(self) -> int:
        """Chromium writes the port it picked to DevToolsActivePort in the profile."""
        f = Path(self.profile) / "DevToolsActivePort"
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited ({self.proc.returncode}); see {self.log.name}")
            if f.exists() and f.read_text().strip():
                return int(f.read_text().split()[0])
            await asyncio.sleep(0.1)
        raise RuntimeError("chromium did not open its DevTools port")

    async def send(self, method: str, params: dict | None = None, timeout: float = 20) -> dict:
        id_ = next(self.ids)
        await self.ws.send(json.dumps({"id": id_, "method": method, "params": params or {}}))
        deadline = time.time() + timeout
        while True:
            raw = await asyncio.wait_for(self.ws.recv(), timeout=max(0.1, deadline - time.time()))
            msg = json.loads(raw)
            if msg.get("method") == "Log.entryAdded":
                entry = msg["params"]["entry"]
                self.messages.append(f"{entry.get('level')}: {entry.get('text')} {entry.get('url', '')}".strip())
            elif msg.get("method") == "Runtime.consoleAPICalled":
                self.messages.append("console: " + " ".join(str(a.get("value")) for a in msg["params"].get("args", [])))
            if msg.get("id") == id_:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    async def evaluate(self, expression: str):
        r = await self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression[:60]}: {r['exceptionDetails'].get('text')}")
        return r.get("result", {}).get("value")

    async def navigate(self, url: str) -> None:
        await self.send("Page.navigate", {"url": url})

    async def wait_for(self, what: str, expression: str, timeout: float = 20):
        """Polls `expression` until truthy (navigations in between are expected)."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                value = await self.evaluate(expression)
                if value:
                    return value
            except (RuntimeError, asyncio.TimeoutError) as e:
                last = e
            await asyncio.sleep(0.1)
        href = await self.evaluate("location.href")
        said = "; ".join(self.messages[-3:]) or "nothing"
        raise RuntimeError(f"timed out waiting for {what} (at {href}; {last}); the browser said: {said}")

    async def screenshot(self, path: Path) -> None:
        r = await self.send("Page.captureScreenshot", {"format": "png"})
        path.write_bytes(base64.b64decode(r["data"]))
