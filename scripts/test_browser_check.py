"""Tests for scripts/browser_check.py and local/src/status.html, in a real headless Chromium.

Run from the repository root (standard library only):
    python3 -m unittest scripts/test_browser_check.py
A fake server here serves the real local/src/status.html at /status and a /status.json that the
tests change while the page is open; no Rust server is needed. Without Chromium the browser tests
are skipped, except with CI=true, where they fail (install it with: apt-get install -y chromium).
"""
from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOOL = HERE / "browser_check.py"
PAGE = HERE.parent / "local" / "src" / "status.html"
sys.path.insert(0, str(HERE))
import browser_check as bc  # noqa: E402

CHROMIUM = next((p for p in map(shutil.which, bc.CANDIDATES) if p), None)
IN_CI = os.environ.get("CI", "").lower() == "true"

NOW_MS = int(time.time() * 1000)
BASE = {
    "generated_at_ms": NOW_MS,
    "store": "in-memory",
    "breakers": [
        {"name": "wechat.message", "state": "closed", "calls": 12, "failures": 3, "slow": 0,
         "failure_rate": 25.0, "open_until_ms": 0, "probes_left": 0, "version": 4, "trips": 0},
        {"name": "wechat.token", "state": "half_open", "calls": 0, "failures": 0, "slow": 0,
         "failure_rate": None, "open_until_ms": 0, "probes_left": 2, "version": 7, "trips": 1},
    ],
    "token": {"appid": "wx0123456789abcdef", "age_secs": 120, "expires_in_secs": 7080, "source": "fleet"},
    "events": [{"at_ms": NOW_MS - 1000, "text": "wechat.message: closed \u2192 open (fleet, version 2)"}],
}


class FakeStatusServer:
    """/status: the real page; /status.json: `self.data`, or HTTP 503 while `self.failing`."""

    def __init__(self, data: dict):
        self.data = data
        self.failing = False
        self.json_hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if self.path == "/status":
                    self._send(200, "text/html; charset=utf-8", PAGE.read_bytes())
                elif self.path == "/status.json":
                    outer.json_hits += 1
                    if outer.failing:
                        self._send(503, "text/plain", b"down")
                    else:
                        self._send(200, "application/json", json.dumps(outer.data).encode())
                else:
                    self._send(404, "text/plain", b"no such route")

            def _send(self, code, ctype, body):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/status"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *_):
        self.httpd.shutdown()
        self.httpd.server_close()

    def later(self, seconds: float, change) -> None:
        t = threading.Timer(seconds, change)
        t.daemon = True
        t.start()


def check(url: str, *args: str, timeout: float = 15) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), "--url", url, "--timeout", str(timeout), *args],
                          capture_output=True, text=True, timeout=timeout + 30)


class SplitSelectorText(unittest.TestCase):
    def test_first_equals_outside_brackets_and_quotes(self):
        self.assertEqual(bc.split_selector_text('tr[data-breaker="wechat.message"] [data-state]=CLOSED'),
                         ('tr[data-breaker="wechat.message"] [data-state]', "CLOSED"))
        self.assertEqual(bc.split_selector_text("a[title='x=y']=k=v"), ("a[title='x=y']", "k=v"))
        self.assertEqual(bc.split_selector_text("#updated = Updated "), ("#updated", "Updated"))
        self.assertEqual(bc.split_selector_text("#empty="), ("#empty", ""))

    def test_no_separator_is_a_usage_error(self):
        for spec in ("#updated", "[a=b]", "=text"):
            with self.assertRaises(bc.UsageError, msg=spec):
                bc.split_selector_text(spec)


class Usage(unittest.TestCase):
    def test_missing_chromium_exits_2_with_install_hint(self):
        r = check("http://127.0.0.1:9/status", "--chromium", "/nonexistent/chromium", timeout=5)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("apt-get install -y chromium", r.stderr)

    def test_bad_selector_spec_exits_2(self):
        r = check("http://127.0.0.1:9/status", "--expect-selector-text", "no-separator", timeout=5)
        self.assertEqual(r.returncode, 2, r.stderr)


@unittest.skipIf(CHROMIUM is None and not IN_CI, "no Chromium (apt-get install -y chromium); with CI=true this fails")
class InBrowser(unittest.TestCase):
    def setUp(self):
        if CHROMIUM is None:
            self.fail("CI=true but no Chromium on PATH: apt-get install -y chromium")

    def test_page_renders_the_contract(self):
        data = copy.deepcopy(BASE)
        data["breakers"].append({"name": "wechat.<b>jssdk</b>", "state": "forced_open", "calls": 1,
                                 "failures": 1, "slow": 1, "failure_rate": 100.0,
                                 "open_until_ms": NOW_MS + 60_000, "probes_left": 0, "version": 9, "trips": 3})
        with FakeStatusServer(data) as srv:
            r = check(srv.url,
                      "--expect-text", "wechat-ha status",
                      "--expect-text", "Token: wx0123456789abcdef \u00b7 age 2 min \u00b7 expires in 1 h 58 min",
                      "--expect-text", "wechat.message: closed \u2192 open (fleet, version 2)",
                      "--expect-selector-text", 'tr[data-breaker="wechat.message"] [data-state]=CLOSED',
                      "--expect-selector-text", 'tr[data-breaker="wechat.message"] [data-col="failure-rate"]=25.0 %',
                      "--expect-selector-text", 'tr[data-breaker="wechat.message"] [data-col="open-until"]=\u2014',
                      "--expect-selector-text", 'tr[data-breaker="wechat.token"] [data-state="half_open"]=HALF OPEN',
                      "--expect-selector-text", 'tr[data-breaker="wechat.token"] [data-col="failure-rate"]=\u2014',
                      # Escaped, not parsed: the name shows with its angle brackets.
                      "--expect-selector-text", 'tr[data-breaker="wechat.<b>jssdk</b>"] td.name=wechat.<b>jssdk</b>',
                      "--expect-selector-text", 'tr[data-breaker="wechat.<b>jssdk</b>"] [data-state]=FORCED OPEN',
                      "--expect-selector-text", "#events li:first-child time:not(:empty)=" + time.strftime(
                          "%H:%M:%S", time.localtime((NOW_MS - 1000) / 1000)),
                      "--expect-selector-text", "#store=in-memory")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("OK", r.stdout)

    def test_wrong_expectation_exits_1_and_shows_the_page(self):
        with FakeStatusServer(copy.deepcopy(BASE)) as srv:
            r = check(srv.url, "--expect-selector-text", 'tr[data-breaker="wechat.message"] [data-state]=OPEN',
                      timeout=4)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("shows 'CLOSED', wanted 'OPEN'", r.stderr)
        self.assertIn("| wechat-ha status", r.stderr)     # the rendered text is shown
        self.assertIn("Updated ", r.stderr)

    def test_follows_the_page_from_closed_to_open(self):
        data = copy.deepcopy(BASE)
        with FakeStatusServer(data) as srv:
            def trip():
                b = srv.data["breakers"][0]
                b.update(state="open", open_until_ms=int(time.time() * 1000) + 30_000, version=5, trips=1)
            srv.later(3.0, trip)
            t0 = time.monotonic()
            r = check(srv.url, "--expect-selector-text", 'tr[data-breaker="wechat.message"] [data-state="open"]=OPEN',
                      "--expect-selector-text", 'tr[data-breaker="wechat.message"] [data-col="version"]=5')
            took = time.monotonic() - t0
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertGreaterEqual(took, 3.0)

    def test_no_token_and_no_events(self):
        data = copy.deepcopy(BASE)
        data.update(token=None, events=[], breakers=[])
        with FakeStatusServer(data) as srv:
            r = check(srv.url, "--expect-selector-text", "#token=No token yet",
                      "--expect-text", "No events yet", "--expect-text", "No breakers yet",
                      "--expect-selector-text", "#events=")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_server_gone_keeps_the_last_data_and_says_so(self):
        with FakeStatusServer(copy.deepcopy(BASE)) as srv:
            srv.later(2.5, lambda: setattr(srv, "failing", True))
            r = check(srv.url, "--expect-selector-text", "#updated=Cannot reach the server (retrying)",
                      "--expect-selector-text", 'tr[data-breaker="wechat.message"] [data-state]=CLOSED')
            hits = srv.json_hits
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertGreaterEqual(hits, 2)

    def test_unreachable_url_exits_1_with_the_network_error(self):
        with FakeStatusServer(BASE) as srv:
            url = srv.url
        r = check(url, "--expect-text", "wechat-ha status", timeout=3)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("ERR_CONNECTION_REFUSED", r.stderr)

    def test_invalid_selector_exits_2(self):
        with FakeStatusServer(BASE) as srv:
            r = check(srv.url, "--expect-selector-text", "tr:::bad=x", timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)

    def test_screenshot_is_a_png(self):
        shot = Path(os.environ.get("TMPDIR", "/tmp"), f"browser_check_test_{os.getpid()}.png")
        try:
            with FakeStatusServer(BASE) as srv:
                r = check(srv.url, "--expect-text", "wechat-ha status", "--screenshot", str(shot))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(shot.read_bytes()[:8], b"\x89PNG\r\n\x1a\n")
        finally:
            shot.unlink(missing_ok=True)


if __name__ == "__main__":
    unittest.main()
