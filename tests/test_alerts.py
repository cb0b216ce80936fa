"""The alert webhook against a real local HTTP server; a dead webhook never fails anything."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from personas.alerts import event_for, post


class Hook:
    """A local chat-webhook stand-in: records every JSON body it receives."""

    def __init__(self, status: int = 200) -> None:
        self.bodies: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers["Content-Length"])
                hook.bodies.append(
                    {"ctype": self.headers["Content-Type"], **json.loads(self.rfile.read(n))}
                )
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/secret-token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook():
    h = Hook()
    yield h
    h.close()


def test_refit_alert_reaches_the_webhook_in_chat_shape(hook: Hook) -> None:
    reason = "refit: PSI of share_spend_fashion 0.31 > 0.25"
    assert post(hook.url, "refit", reason, "/ws/runs/r1/report.html", {"mode": "refit"}, "ws")
    (body,) = hook.bodies
    assert body["ctype"] == "application/json"
    assert body["text"].startswith("personas: model refitted [ws]: " + reason)
    assert "/ws/runs/r1/report.html" in body["text"] and body["content"] == body["text"]
    assert body["personas"]["event"] == "refit" and body["personas"]["mode"] == "refit"


def test_dead_or_failing_webhook_returns_false_without_raising(caplog) -> None:
    h = Hook(status=500)
    try:
        assert post(h.url, "failure", "LakeError: boom") is False
        assert len(h.bodies) == 1
    finally:
        h.close()
    t0 = time.monotonic()
    assert post(h.url, "failure", "x", timeout=2) is False  # nobody listens any more
    assert post("http://127.0.0.1:9/none", "drift", "x", timeout=2) is False
    assert post("not a url", "drift", "x") is False
    assert time.monotonic() - t0 < 10
    assert "secret-token" not in caplog.text  # the path (the secret) is never logged
    assert post(None, "refit", "x") is False


def test_which_event() -> None:
    assert event_for("refit", []) == "refit"
    assert event_for("assign", ["PSI of a 0.3 > 0.25"]) == "drift"
    assert event_for("assign", []) is None
