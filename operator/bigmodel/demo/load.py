"""HTTP clients of a served model (the demo's, and the tests'): one request on a new
connection, and threads that keep steady load on a service."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def call(url: str, body: dict[str, Any] | None = None, timeout: float = 30) -> tuple[int, Any]:
    """One request on a new connection: (HTTP status, JSON body)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


PROMPT = "the cat "
"""What the load's clients ask (a prompt both the toy model and the tiny LM tokenize)."""


def completion(address: str, model: str, prompt: str = PROMPT, tokens: int = 8) -> tuple[int, Any]:
    """An OpenAI-compatible completion, greedy, from `address` (`http://host:port`)."""
    body = {"model": model, "prompt": prompt, "max_tokens": tokens, "temperature": 0}
    return call(f"{address}/v1/completions", body)


def chat(address: str, model: str, content: str, tokens: int = 8) -> tuple[int, Any]:
    """An OpenAI-compatible chat completion of one user message from `address`."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": tokens,
    }
    return call(f"{address}/v1/chat/completions", body)


def stream_chat(
    address: str, model: str, content: str, tokens: int = 32, timeout: float = 60
) -> Iterator[str]:
    """The pieces of a streamed chat answer as the server sends them (server-sent events,
    OpenAI's chunk format, until `data: [DONE]`)."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": tokens,
        "stream": True,
    }
    request = urllib.request.Request(
        f"{address}/v1/chat/completions",
        json.dumps(body).encode(),
        {"Content-Type": "application/json", "Accept": "text/event-stream"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        for raw in response:
            line = raw.decode().strip()
            if not line.startswith("data:"):
                continue
            data = line.removeprefix("data:").strip()
            if data == "[DONE]":
                return
            for choice in json.loads(data).get("choices") or ():
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    yield piece


class Load:
    """Client threads each sending completions (or chat completions) one after another (a
    new connection each, so the Service spreads them over its ready replicas), counting the
    answers by status (0: no HTTP answer)."""

    def __init__(
        self, address: str, model: str, clients: int, tokens: int = 8, chat: bool = False
    ) -> None:
        self.address, self.model, self.tokens, self.chat = address, model, tokens, chat
        self.codes: Counter[int] = Counter()
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]

    def _client(self) -> None:
        while not self._stop.is_set():
            try:
                ask = chat if self.chat else completion
                code, body = ask(self.address, self.model, PROMPT, self.tokens)
            except OSError as error:
                code, body = 0, str(error)
            with self._lock:
                self.codes[code] += 1
                if code != 200:
                    self.errors.append(f"{code}: {body}")

    @contextmanager
    def running(self) -> Iterator[Load]:
        """The clients run until the block ends."""
        for thread in self._threads:
            thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            for thread in self._threads:
                thread.join(timeout=60)
