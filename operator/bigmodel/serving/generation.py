"""Text generation, one token per batch step, for `/v1/completions`.

A `Generation` is one request's prompts. Each step the batcher gives it one forward row per
unfinished prompt: with a key/value cache (Hugging Face models), the row's newest token, or
a chunk of its prompt while it is prefilled (no token for it that step); without one
(TinyLM), the prompt plus the tokens generated so far, truncated to the model's context
length. It samples the next token on the device worker, then stops a row at
`max_tokens`, at a stop sequence or at the model's end-of-sequence token. Back on the event
loop after each step it notes when its first and last tokens came (time to first token, time
per output token) and wakes whoever streams it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from bigmodel.serving.detokenize import DecodeOffsets, new_text
from bigmodel.serving.forward import ModelWork
from bigmodel.serving.kv_slots import CachedRow, LayerCache
from bigmodel.serving.metrics import ServingMetrics
from bigmodel.serving.model import Tokenizer

GREEDY_BELOW = 1e-6
"""Temperatures below this are greedy: they would underflow float32 and pick the argmax anyway."""


@dataclass(frozen=True)
class Sampling:
    """How to pick tokens: temperature 0 is greedy; `seed` makes sampling repeatable."""

    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass
class Row:
    """One prompt's state: its tokens so far and, once finished, why."""

    prompt: list[int]
    generated: list[int] = field(default_factory=list)
    text: str = ""
    decoded: DecodeOffsets = field(default_factory=DecodeOffsets)
    """How far `generated` is decoded into `text`."""
    finish_reason: str | None = None
    cached: int = 0
    """Its tokens whose keys and values a KV-cache decoder holds (all but the newest)."""
    cache: list[LayerCache] | None = None
    """Keys and values of its prompt while a KV-cache decoder prefills it."""
    prefilling: bool = False
    """Its prompt is still being prefilled in chunks: the last step gave it no token."""


def sample(
    logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator
) -> list[int]:
    """The next token of each row of `logits` `[rows, vocab]`: argmax, or a seeded draw."""
    if temperature < GREEDY_BELOW:
        return [int(token) for token in logits.argmax(dim=-1).tolist()]
    # Shift the best logit to 0 before dividing: a tiny temperature cannot overflow then.
    logits = logits.float()
    scaled = (logits - logits.max(dim=-1, keepdim=True).values) / temperature
    probs = torch.softmax(scaled, dim=-1).cpu()
    if top_p >= 1:
        return [int(token) for token in torch.multinomial(probs, 1, generator=generator)[:, 0]]
    # Nucleus: keep the most likely tokens whose cumulative probability reaches top_p.
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    outside = sorted_probs.cumsum(dim=-1) - sorted_probs > top_p
    sorted_probs[outside] = 0
    picked = torch.multinomial(sorted_probs, 1, generator=generator)
    return [int(token) for token in order.gather(-1, picked)[:, 0]]


class Generation(ModelWork):
    """Completions of one request's prompts, advanced one token per step."""

    def __init__(
        self,
        prompts: Sequence[list[int]],
        sampling: Sampling,
        tokenizer: Tokenizer,
        eos_token_id: int | None = None,
    ) -> None:
        self.items = [Row(list(prompt)) for prompt in prompts]
        self.sampling = sampling
        self.tokenizer = tokenizer
        self.eos_token_id = eos_token_id
        self.generator = torch.Generator()
        if sampling.seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(sampling.seed)
        self._longest_stop = max((len(stop) for stop in sampling.stop), default=0)
        self.first_token_at: float | None = None
        """`time.monotonic()` when the step that produced the first token ended."""
        self.last_token_at: float | None = None
        self.progress = asyncio.Event()
        """Set after each step (on the event loop); a stream clears it as it reads."""

    def _unfinished(self) -> list[Row]:
        return [row for row in self.items if row.finish_reason is None]

    @property
    def rows(self) -> int:
        """Prompts still generating."""
        return len(self._unfinished())

    @property
    def output_tokens(self) -> int:
        """Tokens generated so far over every prompt."""
        return sum(len(row.generated) for row in self.items)

    def usage(self) -> dict[str, int]:
        """OpenAI's `usage` of this generation so far."""
        prompt = sum(len(row.prompt) for row in self.items)
        output = self.output_tokens
        return {
            "prompt_tokens": prompt,
            "completion_tokens": output,
            "total_tokens": prompt + output,
        }

    def record(self, metrics: ServingMetrics) -> None:
        """Its token counts and times in the metrics (once, when it ends or is cut short)."""
        metrics.generated(
            sum(len(row.prompt) for row in self.items),
            self.output_tokens,
            max(len(row.generated) for row in self.items),
            queued_at=self.queued_at,
            first_token_at=self.first_token_at,
            last_token_at=self.last_token_at,
        )

    def cached_rows(self) -> Sequence[CachedRow]:
        """The unfinished rows: a KV-cache decoder advances them."""
        return self._unfinished()

    def stepped(self) -> None:
        """After a step: note the token times, wake the stream."""
        now = time.monotonic()
        if self.output_tokens:
            if self.first_token_at is None:
                self.first_token_at = now
            self.last_token_at = now
        self.progress.set()

    def windows(self, context_length: int) -> list[torch.Tensor]:
        """Each unfinished row's prompt and output so far, its last `context_length` tokens."""
        return [
            torch.tensor((row.prompt + row.generated)[-context_length:], dtype=torch.long)
            for row in self._unfinished()
        ]

    def advance(self, logits: torch.Tensor) -> None:
        """Append one sampled token to each unfinished row past its prefill; finish rows that
        are done."""
        rows = [row for row in self._unfinished() if not row.prefilling]
        if not rows:
            return
        tokens = sample(logits, self.sampling.temperature, self.sampling.top_p, self.generator)
        for row, token in zip(rows, tokens, strict=True):
            self._append(row, token)
        self.done = not self._unfinished()

    def _append(self, row: Row, token: int) -> None:
        if token == self.eos_token_id:
            row.finish_reason = "stop"
            row.text += new_text(self.tokenizer, row.generated, row.decoded, final=True)
            return
        row.generated.append(token)
        previous = len(row.text)
        at_length = len(row.generated) >= self.sampling.max_tokens
        row.text += new_text(self.tokenizer, row.generated, row.decoded, final=at_length)
        # A stop sequence can only end in the new text: search from just before it.
        start = max(0, previous - self._longest_stop + 1)
        found = [i for stop in self.sampling.stop if (i := row.text.find(stop, start)) >= 0]
        if found:
            row.text = row.text[: min(found)]
            row.finish_reason = "stop"
        elif at_length:
            row.finish_reason = "length"
