"""A local webhook receiver for the tests: a threaded ``http.server`` on a free port that
verifies each request's Standard Webhooks signature (401 if it does not verify)."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    """``status``: what a verified request is answered (204, or 500 for a fault)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.secret: str | None = None
        self.status = 204
        self.delay = 0.0  # seconds before answering (a slow receiver)
        # Verified bodies, with their webhook-id and arrival time (time.time()).
        self.received: list[dict[str, Any]] = []
        self.rejected = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if receiver.delay:
                    time.sleep(receiver.delay)
                try:
                    assert receiver.secret is not None
                    data = Webhook(receiver.secret).verify(body, dict(self.headers.items()))
                except (WebhookVerificationError, AssertionError):
                    with receiver._lock:
                        receiver.rejected += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                if receiver.status < 300:
                    with receiver._lock:
                        receiver.received.append(
                            {
                                "id": self.headers["webhook-id"],
                                "body": data,
                                "raw": body,
                                "at": time.time(),
                            }
                        )
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def ids(self) -> list[str]:
        with self._lock:
            return [r["id"] for r in self.received]

    def arrivals(self) -> list[tuple[str, float]]:
        """(webhook-id, arrival time) of each verified request, in order of arrival."""
        with self._lock:
            return [(r["id"], r["at"]) for r in self.received]

    def bodies(self) -> list[str]:
        with self._lock:
            return [json.dumps(r["body"]) for r in self.received]
