"""The server's Prometheus metrics, in its own registry, with bounded labels.

The operator reads these names: a replica's T_i is the request duration histogram's
Δ_sum / Δ_count between two scrapes (over both `endpoint` values), and its in-flight load
is `requests_running + requests_waiting`. With `--no-request-metrics` nothing is recorded
per request or batch (only `model_loaded` stays), for measuring what telemetry costs.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from bigmodel.serving.errors import RefusalReason

PREFIX = "bigmodel_serving"
REQUEST_DURATION_SECONDS = f"{PREFIX}_request_duration_seconds"
REQUESTS_RUNNING = f"{PREFIX}_requests_running"
REQUESTS_WAITING = f"{PREFIX}_requests_waiting"
REQUESTS_TOTAL = f"{PREFIX}_requests_total"
BATCH_SIZE = f"{PREFIX}_batch_size"
BATCH_SECONDS = f"{PREFIX}_batch_seconds"
QUEUE_SECONDS = f"{PREFIX}_queue_seconds"
REJECTIONS_TOTAL = f"{PREFIX}_rejections_total"
MODEL_LOADED = f"{PREFIX}_model_loaded"
TIME_TO_FIRST_TOKEN_SECONDS = f"{PREFIX}_time_to_first_token_seconds"
TIME_PER_OUTPUT_TOKEN_SECONDS = f"{PREFIX}_time_per_output_token_seconds"
PROMPT_TOKENS_TOTAL = f"{PREFIX}_prompt_tokens_total"
GENERATION_TOKENS_TOTAL = f"{PREFIX}_generation_tokens_total"

ENDPOINTS = ("infer", "completions", "chat")
"""The `endpoint` label's values: the routes that run the model."""
CONTENT_TYPE = CONTENT_TYPE_LATEST

_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_BATCH_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
_BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
# vLLM's buckets for the same histograms, so one dashboard's quantiles mean the same.
_TTFT_SECONDS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5,
                 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)  # fmt: skip
_TPOT_SECONDS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0,
                 7.5, 10.0, 20.0, 40.0, 80.0)  # fmt: skip


class ServingMetrics:
    """Every metric of one server; also the batcher's observer."""

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self.registry = CollectorRegistry()
        registry = self.registry
        self.request_duration = Histogram(
            REQUEST_DURATION_SECONDS,
            "Seconds from a model request's arrival to its answer, successful requests only "
            "(fast rejections would make an overloaded replica look fast).",
            ["endpoint"],
            buckets=_SECONDS,
            registry=registry,
        )
        self.requests = Counter(
            REQUESTS_TOTAL, "Model requests answered, by endpoint and HTTP status code.",
            ["endpoint", "code"], registry=registry,
        )  # fmt: skip
        self.running = Gauge(
            REQUESTS_RUNNING, "Requests in the running batch (a generation: until it ends).",
            registry=registry,
        )  # fmt: skip
        self.waiting = Gauge(
            REQUESTS_WAITING, "Requests queued for their first batch.", registry=registry
        )
        self.batch_size = Histogram(
            BATCH_SIZE, "Rows per forward batch.", buckets=_BATCH_SIZES, registry=registry
        )
        self.batch_seconds = Histogram(
            BATCH_SECONDS, "Seconds per forward batch on the device, sampling included.",
            buckets=_BATCH_SECONDS, registry=registry,
        )  # fmt: skip
        self.queue_seconds = Histogram(
            QUEUE_SECONDS, "Seconds a request waited between its arrival and its first batch.",
            buckets=_SECONDS, registry=registry,
        )  # fmt: skip
        self.rejections = Counter(
            REJECTIONS_TOTAL, "Requests refused, by reason.", ["reason"], registry=registry
        )
        self.model_loaded = Gauge(
            MODEL_LOADED, "1 once the model is loaded and warmed up, else 0.", registry=registry
        )
        self.time_to_first_token = Histogram(
            TIME_TO_FIRST_TOKEN_SECONDS,
            "Seconds from a generation's arrival to its first output token.",
            buckets=_TTFT_SECONDS, registry=registry,
        )  # fmt: skip
        self.time_per_output_token = Histogram(
            TIME_PER_OUTPUT_TOKEN_SECONDS,
            "Seconds per output token after the first, one observation per generation of at "
            "least 2 tokens: (last token - first token) / (tokens - 1).",
            buckets=_TPOT_SECONDS, registry=registry,
        )  # fmt: skip
        self.prompt_tokens = Counter(
            PROMPT_TOKENS_TOTAL, "Prompt tokens of finished generations.", registry=registry
        )
        self.generation_tokens = Counter(
            GENERATION_TOKENS_TOTAL, "Output tokens of generations, finished or cut short.",
            registry=registry,
        )  # fmt: skip
        # Every series exists from the start, so rate() works; the children are kept, so a
        # request costs no label lookup.
        self._durations = {e: self.request_duration.labels(e) for e in ENDPOINTS}
        self._answers = {(e, 200): self.requests.labels(e, "200") for e in ENDPOINTS}
        self._rejections = {
            reason: self.rejections.labels(reason.value) for reason in RefusalReason
        }

    def render(self) -> bytes:
        """The text exposition of the registry."""
        return generate_latest(self.registry)

    def answered(self, endpoint: str, code: int, seconds: float) -> None:
        """A model request ended with HTTP `code` after `seconds`."""
        if not self.enabled:
            return
        counter = self._answers.get((endpoint, code))
        if counter is None:  # bounded: two endpoints times the statuses this server sends
            counter = self._answers[endpoint, code] = self.requests.labels(endpoint, str(code))
        counter.inc()
        if 200 <= code < 300:
            self._durations[endpoint].observe(seconds)

    def generated(
        self,
        prompt_tokens: int,
        output_tokens: int,
        stream_tokens: int,
        *,
        queued_at: float,
        first_token_at: float | None,
        last_token_at: float | None,
    ) -> None:
        """A generation ended: its token counts and token times (`time.monotonic()`).

        `stream_tokens` is its longest choice's: choices are generated side by side, so that
        is how many tokens the time between its first and last token was spent on.
        """
        if not self.enabled:
            return
        self.prompt_tokens.inc(prompt_tokens)
        self.generation_tokens.inc(output_tokens)
        if first_token_at is None:
            return
        self.time_to_first_token.observe(first_token_at - queued_at)
        if stream_tokens >= 2 and last_token_at is not None:
            per_token = (last_token_at - first_token_at) / (stream_tokens - 1)
            self.time_per_output_token.observe(per_token)

    def rejected(self, reason: RefusalReason) -> None:
        """A request was refused."""
        if self.enabled:
            self._rejections[reason].inc()

    # The batcher's observer (bigmodel.serving.batcher.BatchObserver).
    def waiting_changed(self, delta: int) -> None:
        """Requests queued went up or down."""
        if self.enabled:
            self.waiting.inc(delta)

    def running_changed(self, delta: int) -> None:
        """Requests running went up or down."""
        if self.enabled:
            self.running.inc(delta)

    def queued_for(self, seconds: float) -> None:
        """A request waited `seconds` for its first batch."""
        if self.enabled:
            self.queue_seconds.observe(seconds)

    def batch(self, rows: int, seconds: float) -> None:
        """A forward of `rows` rows took `seconds`."""
        if self.enabled:
            self.batch_size.observe(rows)
            self.batch_seconds.observe(seconds)
