#!/usr/bin/env python3
"""Load a page in a real headless Chromium and wait until expectations about what it shows hold.

Standard library only. Drives Chromium over the Chrome DevTools Protocol (a minimal RFC 6455
WebSocket client is built in), so a page that renders itself with JavaScript and keeps updating
(like the local server's /status) is checked as a person would see it.

    python3 scripts/browser_check.py --url http://127.0.0.1:PORT/status \\
        --expect-text "wechat-ha status" \\
        --expect-selector-text 'tr[data-breaker="wechat.message"] [data-state]=CLOSED' \\
        --timeout 15

Waits until document.body.dataset.loaded == "true" (unless --no-wait-loaded) and every expectation
holds at the same moment, re-checking every 100 ms:
  --expect-text TEXT           TEXT is a substring of document.body.innerText (repeatable)
  --expect-selector-text S=T   document.querySelector(S).innerText, trimmed, equals T (repeatable);
                               the first '=' outside [...] and quotes separates S from T
Exit codes: 0 all expectations held; 1 they did not within --timeout (what the page showed is
printed); 2 usage or launch error (no Chromium, Chromium did not start, invalid selector).
The timeout covers the whole run, Chromium's start included. Chromium and its temporary profile
are removed on every exit.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
INSTALL_HINT = ("install it with: apt-get install -y chromium   (Debian/Ubuntu; the binary is /usr/bin/chromium),\n"
                "or pass --chromium PATH")
POLL_S = 0.1
MAX_SHOWN_TEXT = 4000


class UsageError(Exception):
    """Exit 2: the tool could not do its job (bad arguments, no browser, browser did not start)."""


class CdpError(Exception):
    """A DevTools command answered with an error."""


# ------------------------------------------------------------------------------------------------
# Arguments
# ------------------------------------------------------------------------------------------------

def split_selector_text(spec: str) -> tuple[str, str]:
    """'SELECTOR=TEXT' -> (SELECTOR, TEXT), splitting at the first '=' outside [...] and quotes."""
    depth, quote = 0, None
    i = 0
    while i < len(spec):
        c = spec[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif c == "\\":
            i += 1
        elif c == "[":
            depth += 1
        elif c == "]":
            depth = max(0, depth - 1)
        elif c == "=" and depth == 0:
            selector, text = spec[:i].strip(), spec[i + 1:].strip()
            if not selector:
                break
            return selector, text
        i += 1
    raise UsageError(f"--expect-selector-text needs SELECTOR=TEXT (an '=' outside [...] and quotes): {spec!r}")


def find_chromium(explicit: str | None) -> str:
    if explicit:
        path = explicit if os.sep in explicit else shutil.which(explicit)
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
        raise UsageError(f"Chromium not found or not executable: {explicit}\n{INSTALL_HINT}")
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    raise UsageError(f"no Chromium on PATH (looked for {', '.join(CANDIDATES)})\n{INSTALL_HINT}")


# ------------------------------------------------------------------------------------------------
# A minimal WebSocket client (RFC 6455): text frames out, text/binary frames in, ping/pong, close
# ------------------------------------------------------------------------------------------------

class WebSocket:
    GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    def __init__(self, host: str, port: int, path: str, timeout: float):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        key = base64.b64encode(os.urandom(16)).decode()
        request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self.sock.sendall(request.encode())
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("DevTools closed the connection during the WebSocket handshake")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        if " 101 " not in lines[0] + " ":
            raise ConnectionError(f"WebSocket handshake refused: {lines[0]}")
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        accept = base64.b64encode(hashlib.sha1((key + self.GUID).encode()).digest()).decode()
        if headers.get("sec-websocket-accept") != accept:
            raise ConnectionError("WebSocket handshake: wrong Sec-WebSocket-Accept")

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def send_text(self, text: str) -> None:
        self._send_frame(0x1, text.encode())

    def _read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buf)))
            if not chunk:
                raise ConnectionError("DevTools connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_message(self, timeout: float) -> str:
        """One whole message (fragments joined). Raises socket.timeout when none arrives in time."""
        self.sock.settimeout(max(0.001, timeout))
        parts: list[bytes] = []
        while True:
            b0, b1 = self._read_exact(2)
            opcode, fin, n = b0 & 0x0F, b0 & 0x80, b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", self._read_exact(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", self._read_exact(8))
            mask = self._read_exact(4) if b1 & 0x80 else None
            payload = self._read_exact(n)
            if mask:
                payload = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
            if opcode == 0x8:
                raise ConnectionError("DevTools closed the WebSocket")
            if opcode == 0x9:
                self._send_frame(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            parts.append(payload)
            if fin:
                return b"".join(parts).decode("utf-8", "replace")

    def close(self) -> None:
        try:
            self._send_frame(0x8, struct.pack("!H", 1000))
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


# ------------------------------------------------------------------------------------------------
# DevTools protocol over that socket
# ------------------------------------------------------------------------------------------------

class Cdp:
    def __init__(self, ws: WebSocket):
        self.ws = ws
        self.next_id = 0
        self.session_id: str | None = None
        self.console: list[str] = []   # page errors and console warnings/errors, for the failure report
        self.crashed: str | None = None

    def call(self, method: str, params: dict | None = None, *, timeout: float = 10.0, browser: bool = False) -> dict:
        self.next_id += 1
        msg_id = self.next_id
        msg: dict = {"id": msg_id, "method": method, "params": params or {}}
        if self.session_id and not browser:
            msg["sessionId"] = self.session_id
        self.ws.send_text(json.dumps(msg))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no answer to {method} within {timeout:.1f} s")
            try:
                reply = json.loads(self.ws.recv_message(remaining))
            except socket.timeout:
                raise TimeoutError(f"no answer to {method} within {timeout:.1f} s") from None
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise CdpError(f"{method}: {reply['error'].get('message')} {reply['error'].get('data', '')}".strip())
                return reply.get("result", {})
            if "method" in reply:
                self._event(reply["method"], reply.get("params", {}))

    def _event(self, method: str, params: dict) -> None:
        if method == "Runtime.exceptionThrown":
            d = params.get("exceptionDetails", {})
            desc = (d.get("exception") or {}).get("description") or d.get("text", "")
            self._note(f"page exception: {desc}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            self._note(f"console.{params.get('type')}: {args}")
        elif method == "Log.entryAdded":
            e = params.get("entry", {})
            if e.get("level") in ("error", "warning"):
                self._note(f"{e.get('source', 'log')} {e.get('level')}: {e.get('text', '')} {e.get('url', '')}".rstrip())
        elif method in ("Inspector.targetCrashed", "Target.targetCrashed"):
            self.crashed = "the page crashed"
        elif method == "Target.detachedFromTarget" and params.get("sessionId") == self.session_id:
            self.crashed = "the page target went away"

    def _note(self, line: str) -> None:
        line = line.strip()
        if self.console and self.console[-1].endswith(line):
            return
        if len(self.console) < 200:
            self.console.append(line[:500])


# ------------------------------------------------------------------------------------------------
# Chromium
# ------------------------------------------------------------------------------------------------

def launch(chromium: str, profile: str, timeout: float, window: str) -> tuple[subprocess.Popen, int, str]:
    log = open(os.path.join(profile, "chromium.log"), "wb")
    args = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--remote-debugging-port=0", f"--user-data-dir={profile}", f"--window-size={window}",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
            "--disable-background-networking", "--disable-component-update", "--disable-default-apps",
            "--mute-audio", "--hide-scrollbars", "about:blank"]
    try:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    except OSError as e:
        raise UsageError(f"cannot start {chromium}: {e}\n{INSTALL_HINT}") from None
    finally:
        log.close()
    port_file = Path(profile, "DevToolsActivePort")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_file.exists():
            lines = port_file.read_text().split("\n")
            if len(lines) >= 2 and lines[0].strip().isdigit() and lines[1].strip():
                return proc, int(lines[0]), lines[1].strip()
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    tail = chromium_log_tail(profile)
    why = f"exited with code {proc.returncode}" if proc.poll() is not None else f"did not open DevTools within {timeout:.0f} s"
    raise UsageError(f"Chromium ({chromium}) {why}. Its output:\n{tail}")


def chromium_log_tail(profile: str, lines: int = 15) -> str:
    try:
        text = Path(profile, "chromium.log").read_text(errors="replace")
    except OSError:
        return "(no output)"
    useful = [ln for ln in text.splitlines() if "dbus" not in ln.lower()] or text.splitlines()
    return "\n".join("  " + ln for ln in useful[-lines:]) or "  (no output)"


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None:
        return
    for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)   # the process group this tool started (start_new_session)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    # Renderer/zygote children share the group; make sure none outlives us.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# ------------------------------------------------------------------------------------------------
# The check
# ------------------------------------------------------------------------------------------------

SNAPSHOT_JS = """(() => {
  const sels = %s;
  const body = document.body;
  const out = {url: location.href, ready: document.readyState,
               loaded: !!(body && body.dataset && body.dataset.loaded === "true"),
               text: body ? body.innerText : "", sels: []};
  for (const s of sels) {
    try {
      const e = document.querySelector(s);
      out.sels.push(e ? {found: true, text: (e.innerText ?? e.textContent ?? "").trim()} : {found: false});
    } catch (err) {
      out.sels.push({found: false, error: String(err && err.message || err)});
    }
  }
  return out;
})()"""


def unmet(snap: dict, args: argparse.Namespace, pairs: list[tuple[str, str]]) -> list[str]:
    problems = []
    if args.wait_loaded and not snap.get("loaded"):
        problems.append('document.body.dataset.loaded is not "true"')
    text = snap.get("text") or ""
    for want in args.expect_text:
        if want not in text:
            problems.append(f"page text does not contain {want!r}")
    for (sel, want), got in zip(pairs, snap.get("sels") or [{}] * len(pairs)):
        if got.get("error"):
            problems.append(f"selector {sel!r} is invalid: {got['error']}")
        elif not got.get("found"):
            problems.append(f"no element matches {sel!r} (wanted text {want!r})")
        elif got.get("text") != want:
            problems.append(f"{sel!r} shows {got.get('text')!r}, wanted {want!r}")
    return problems


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    deadline = started + args.timeout
    pairs = [split_selector_text(s) for s in args.expect_selector_text]
    chromium = find_chromium(args.chromium)
    profile = tempfile.mkdtemp(prefix="browser_check-")
    proc = ws = None
    try:
        proc, port, browser_path = launch(chromium, profile, min(max(args.timeout, 5.0), 30.0), args.window_size)
        ws = WebSocket("127.0.0.1", port, browser_path, timeout=10)
        cdp = Cdp(ws)
        target = cdp.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        cdp.session_id = cdp.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for method in ("Page.enable", "Runtime.enable", "Log.enable"):
            cdp.call(method)
        launched = time.monotonic()

        expression = SNAPSHOT_JS % json.dumps([s for s, _ in pairs])
        nav_error = None
        navigated = False
        snap: dict = {}
        problems = ["the page was not loaded"]
        while True:
            if cdp.crashed:
                problems = [cdp.crashed]
                break
            if not navigated:
                # Retried until the deadline: the server under test may still be starting.
                res = cdp.call("Page.navigate", {"url": args.url}, timeout=max(1.0, deadline - time.monotonic()))
                nav_error = res.get("errorText")
                navigated = not nav_error
                if nav_error:
                    problems = [f"could not load {args.url}: {nav_error}"]
            if navigated:
                try:
                    r = cdp.call("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                                 timeout=max(1.0, min(5.0, deadline - time.monotonic())))
                    if "exceptionDetails" in r:
                        problems = [f"snapshot script failed: {r['exceptionDetails'].get('text')}"]
                    else:
                        snap = r.get("result", {}).get("value") or {}
                        problems = unmet(snap, args, pairs)
                        bad = [p for p in problems if " is invalid: " in p]
                        if bad:
                            raise UsageError("; ".join(bad))
                except CdpError as e:   # e.g. the context was replaced by a navigation: look again
                    problems = [f"could not read the page: {e}"]
                if not problems:
                    break
            if time.monotonic() >= deadline:
                break
            time.sleep(min(POLL_S if navigated else 0.5, max(0.0, deadline - time.monotonic())))

        elapsed = time.monotonic() - started
        if args.screenshot:
            try:
                shot = cdp.call("Page.captureScreenshot", {"format": "png"}, timeout=10)
                Path(args.screenshot).write_bytes(base64.b64decode(shot["data"]))
            except (CdpError, TimeoutError, OSError) as e:
                print(f"browser_check: screenshot failed: {e}", file=sys.stderr)

        if not problems:
            n = len(args.expect_text) + len(pairs)
            print(f"browser_check: OK {args.url}: {n} expectation(s) held after {elapsed:.2f} s "
                  f"(Chromium up in {launched - started:.2f} s)")
            return EXIT_OK

        out = [f"browser_check: FAILED after {elapsed:.2f} s (timeout {args.timeout:g} s) on {args.url}"]
        out += [f"  - {p}" for p in problems]
        if snap:
            out.append(f"  document: {snap.get('url')} readyState={snap.get('ready')} "
                       f"loaded={'true' if snap.get('loaded') else 'false'}")
            for (sel, _), got in zip(pairs, snap.get("sels") or []):
                shown = repr(got.get("text")) if got.get("found") else "(no match)"
                out.append(f"  selector {sel!r}: {shown}")
            text = snap.get("text") or ""
            if len(text) > MAX_SHOWN_TEXT:
                text = text[:MAX_SHOWN_TEXT] + f"\n… ({len(text) - MAX_SHOWN_TEXT} more characters)"
            out.append("  page text (document.body.innerText):")
            out += ["    | " + ln for ln in (text.splitlines() or ["(empty)"])]
        if cdp.console:
            out.append("  console / page errors:")
            out += ["    " + ln for ln in cdp.console[-20:]]
        if args.screenshot:
            out.append(f"  screenshot: {args.screenshot}")
        print("\n".join(out), file=sys.stderr)
        return EXIT_FAILED
    except (ConnectionError, TimeoutError, OSError, CdpError) as e:
        tail = chromium_log_tail(profile)
        raise UsageError(f"talking to Chromium failed: {e}\nChromium's output:\n{tail}") from None
    finally:
        if ws is not None:
            try:   # a clean exit lets Chromium reap its own helper processes
                ws.send_text(json.dumps({"id": 1 << 30, "method": "Browser.close"}))
                if proc is not None:
                    proc.wait(timeout=3)
            except (OSError, subprocess.TimeoutExpired):
                pass
            ws.close()
        stop(proc)
        shutil.rmtree(profile, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="page to load")
    ap.add_argument("--expect-text", action="append", default=[], metavar="TEXT",
                    help="substring of document.body.innerText (repeatable)")
    ap.add_argument("--expect-selector-text", action="append", default=[], metavar="SELECTOR=TEXT",
                    help="querySelector(SELECTOR).innerText, trimmed, equals TEXT (repeatable)")
    ap.add_argument("--timeout", type=float, default=15.0, help="seconds for the whole run (default 15)")
    ap.add_argument("--chromium", metavar="PATH",
                    help=f"browser binary (default: first of {', '.join(CANDIDATES)} on PATH)")
    ap.add_argument("--screenshot", metavar="FILE", help="write a PNG of the page at the end (pass or fail)")
    ap.add_argument("--window-size", default="1280,900", help="viewport WIDTH,HEIGHT (default 1280,900)")
    ap.add_argument("--no-wait-loaded", dest="wait_loaded", action="store_false",
                    help='do not require document.body.dataset.loaded == "true"')
    args = ap.parse_args(argv)
    if args.timeout <= 0:
        ap.error("--timeout must be positive")

    # A SIGTERM from the calling test still runs the cleanup (finally blocks) above.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(EXIT_USAGE))
    try:
        return run(args)
    except UsageError as e:
        print(f"browser_check: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("browser_check: interrupted", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
