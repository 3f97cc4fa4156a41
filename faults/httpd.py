"""A notification endpoint the suite controls: a WeCom-robot-shaped HTTP server in a
thread that answers 200 {"errcode": 0} when up and 503 when down, and logs every hit."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Endpoint:
    def __init__(self, *, up: bool = True, redirect_to: str | None = None):
        self.up = up
        self.redirect_to = redirect_to
        self.hits: list[dict] = []
        self._lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                up = endpoint.up
                with endpoint._lock:
                    endpoint.hits.append(
                        {
                            "t": time.time(),
                            "up": up,
                            "path": self.path,
                            "body": body.decode(errors="replace"),
                        }
                    )
                if endpoint.redirect_to:
                    self.send_response(302)
                    self.send_header("Location", endpoint.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = json.dumps({"errcode": 0, "errmsg": "ok"} if up else {"error": "down"})
                self.send_response(200 if up else 503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data.encode())

            do_POST = do_GET = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Endpoint:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/robot"
