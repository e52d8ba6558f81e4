"""Small HTTP endpoints served by stdlib HTTP from a daemon thread, each page rendered on each
request: the pod's `/metrics`, and the operator's `/healthz` and `/readyz` (a thread of its
own keeps them answering while the process's event loop or training step is busy)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bigmodel.runtime.exposition import CONTENT_TYPE

Page = tuple[int, str, bytes]
"""An answer: HTTP status, content type, body."""


class PageServer:
    """Serves `pages[path]()` to GET requests on `host:port` (port 0 picks a free one) until
    closed; any other path is 404, naming the served ones."""

    def __init__(
        self, host: str, port: int, pages: Mapping[str, Callable[[], Page]], name: str
    ) -> None:
        served = ", ".join(sorted(pages))

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                render = pages.get(self.path.split("?", 1)[0])
                if render is None:
                    status, kind, body = 404, "text/plain", f"served here: {served}\n".encode()
                else:
                    status, kind, body = render()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                """Scrapes and probes are not worth a log line each."""

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name=name, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving and release the port."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


class MetricsServer(PageServer):
    """Serves `render()` at `/metrics` on `host:port` (port 0 picks a free one) until closed."""

    def __init__(self, host: str, port: int, render: Callable[[], str]) -> None:
        super().__init__(
            host, port, {"/metrics": lambda: (200, CONTENT_TYPE, render().encode())}, "metrics"
        )
