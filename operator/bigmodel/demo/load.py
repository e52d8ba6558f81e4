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


def completion(
    address: str, model: str, prompt: str = "the cat ", tokens: int = 8
) -> tuple[int, Any]:
    """An OpenAI-compatible completion, greedy, from `address` (`http://host:port`)."""
    body = {"model": model, "prompt": prompt, "max_tokens": tokens, "temperature": 0}
    return call(f"{address}/v1/completions", body)


class Load:
    """Client threads each sending completions one after another (a new connection each, so
    the Service spreads them over its ready replicas), counting the answers by status (0:
    no HTTP answer)."""

    def __init__(self, address: str, model: str, clients: int, tokens: int = 8) -> None:
        self.address, self.model, self.tokens = address, model, tokens
        self.codes: Counter[int] = Counter()
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]

    def _client(self) -> None:
        while not self._stop.is_set():
            try:
                code, body = completion(self.address, self.model, tokens=self.tokens)
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
