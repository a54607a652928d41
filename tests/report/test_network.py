"""The report makes no network request.

It is served over HTTP on the loopback and loaded by headless Chromium whose every other
request goes to a logging proxy (which answers 502) and whose host names all fail to
resolve, so nothing leaves this machine. Chromium's NetLog tells the page's own requests
(their initiator is the page's origin) from the browser's background traffic (update
checks, network time: no initiator), which the proxy sees too. The report's only request
is the page itself. A control page that does fetch (a stylesheet, an image, ``fetch()``)
shows the harness sees such requests, so the empty result means something.
"""

from __future__ import annotations

import json
import shutil
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from tests.report.test_browser import run_chromium

CONTROL = """<!DOCTYPE html><html><head><link rel="stylesheet" href="https://fonts.invalid/a.css">
</head><body><img src="http://cdn.invalid/logo.png">
<script>fetch("http://api.invalid/ping").catch(() => {});</script></body></html>"""


class _Proxy(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.requests: list[str] = []
        super().__init__(("127.0.0.1", 0), _ProxyHandler)


class _ProxyHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        line = self.rfile.readline(65536).decode("latin-1").strip()
        if line:
            self.server.requests.append(line)  # type: ignore[attr-defined]
        self.wfile.write(
            b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )


class _Files(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        self.server.paths.append(self.path)  # type: ignore[attr-defined]


@contextmanager
def _serving(root: Path) -> Iterator[tuple[ThreadingHTTPServer, _Proxy]]:
    files = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Files, directory=str(root)))
    files.paths = []  # type: ignore[attr-defined]
    proxy = _Proxy()
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (files, proxy)]
    for thread in threads:
        thread.start()
    try:
        yield files, proxy
    finally:
        for server in (files, proxy):
            server.shutdown()
            server.server_close()


def _load(chromium: str, profile: Path, url: str, proxy: _Proxy) -> tuple[list[str], set[str]]:
    """Load ``url``; return the page's requests (URLs) and the hosts of the browser's own."""
    netlog = profile.with_suffix(".netlog.json")
    run_chromium(
        chromium,
        profile,
        f"--proxy-server=http://127.0.0.1:{proxy.server_address[1]}",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--log-net-log={netlog}",
        "--window-size=1400,2400",
        "--virtual-time-budget=5000",
        "--dump-dom",
        url,
    )
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    origin = "http://" + urlsplit(url).netloc
    page, browser = [], set()
    for event in log["events"]:
        params = event.get("params") or {}
        if event["type"] != start or "url" not in params:
            continue
        if params["url"] == url or params.get("initiator") == origin:
            page.append(params["url"])
        else:
            browser.add(urlsplit(params["url"]).hostname or "")
    return page, browser


def _hosts(proxy: _Proxy) -> set[str]:
    """The hosts in the proxy's request lines (``CONNECT host:443``, ``GET http://host/``)."""
    hosts = set()
    for line in proxy.requests:
        target = line.split()[1]
        hosts.add(urlsplit(target if "://" in target else "//" + target).hostname or "")
    return hosts


def test_the_report_asks_for_nothing_but_itself(
    chromium: str, results: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(results / "report.html", site / "report.html")
    (site / "control.html").write_text(CONTROL)
    with _serving(site) as (files, proxy):
        base = f"http://127.0.0.1:{files.server_address[1]}"
        control, _ = _load(chromium, tmp_path / "control", f"{base}/control.html", proxy)
        control_hosts = _hosts(proxy)
        proxy.requests.clear()
        files.paths.clear()  # type: ignore[attr-defined]
        page, browser = _load(chromium, tmp_path / "report", f"{base}/report.html", proxy)
        assert page == [f"{base}/report.html"]
        assert files.paths == ["/report.html"]  # type: ignore[attr-defined]
        # all the proxy saw was the browser's own traffic
        assert _hosts(proxy) <= browser, (proxy.requests, browser)
    # the harness sees a page's requests, at the proxy too
    assert set(control) >= {
        f"{base}/control.html",
        "https://fonts.invalid/a.css",
        "http://cdn.invalid/logo.png",
        "http://api.invalid/ping",
    }
    assert {"fonts.invalid", "cdn.invalid", "api.invalid"} <= control_hosts
