"""A local HTTP server that speaks the OpenAI chat-completions protocol, scripted per test.

A test sets `responder`: a function of the request that returns the answer's content (a str), or a Reply
for a status code, a delay, or usage figures. Every request is recorded with the usage it was answered
with, so a test can check what a job sent and the tokens it counted.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


@dataclass
class Reply:
    content: str = ""
    status: int = 200
    delay: float = 0.0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass
class Request:
    body: dict[str, Any]
    usage: dict[str, int] = field(default_factory=dict)

    @property
    def prompt(self) -> str:
        """The first user message: the rendered prompt."""
        return next(m["content"] for m in self.body["messages"] if m["role"] == "user")

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body["messages"]


def default_responder(request: Request) -> str:
    if "Summarize" in request.prompt:
        return json.dumps({"summary": "A conversation."})
    return json.dumps({"facts": []})


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


class LLMServer:
    """The stub endpoint on 127.0.0.1; `url` is its OpenAI base URL."""

    def __init__(self) -> None:
        self.responder: Callable[[Request], str | Reply] = default_responder
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                status, payload = server.answer(body)
                self._send(status, payload)

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client (a worker) was killed while waiting

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> LLMServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def reset(self, responder: Callable[[Request], str | Reply] = default_responder) -> None:
        with self._lock:
            self.responder = responder
            self.requests = []

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        request = Request(body)
        with self._lock:
            responder = self.responder
            self.requests.append(request)
        reply = responder(request)
        if isinstance(reply, str):
            reply = Reply(reply)
        if reply.delay:
            time.sleep(reply.delay)
        if reply.status != 200:
            return reply.status, {"error": {"message": "scripted failure", "type": "server_error"}}
        prompt_text = "".join(m.get("content") or "" for m in body.get("messages", []))
        request.usage = {"prompt_tokens": reply.prompt_tokens or _tokens(prompt_text),
                         "completion_tokens": reply.completion_tokens or _tokens(reply.content)}
        return 200, {
            "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "stub"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": reply.content}}],
            "usage": {**request.usage, "total_tokens": sum(request.usage.values())},
        }
