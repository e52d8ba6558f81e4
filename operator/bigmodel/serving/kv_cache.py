"""Generation with a key/value cache for transformers causal LMs, one batched step at a time.

Each generating row keeps its own cache: per layer, keys and values `[1, heads, length,
dim]` of every token it has seen. A step takes any mix of rows. Running rows decode their
last token together (their caches left-padded to one length under an attention mask, each
at its own position). Newcomers are prefilled in **chunks**: each step runs at most
`prefill_chunk_tokens` prompt tokens, given to the waiting rows in arrival order, so a long
prompt is spread over several steps and a running row's gap between two tokens stays one
step whose prefill share is bounded. A row's first chunk joins the other first chunks in one
right-padded forward (causality keeps each row's tokens exact; each row keeps only its own
positions of the cache); a later chunk runs against the row's cache. A row gets its first
token from the step that prefills its last prompt token. Rows join and leave between any
two steps, and a row that leaves frees its cache with it. Runs on the device worker thread.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any, Protocol

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence

LayerCache = tuple[torch.Tensor, torch.Tensor]
"""One layer's keys and values of one row: `[1, heads, length, dim]` each."""
PAD_ID = 0


class CachedRow(Protocol):
    """A generating row: its tokens so far and the cache of all but the last one."""

    prompt: list[int]
    generated: list[int]
    cache: list[LayerCache] | None
    prefilling: bool
    """Set by each step: its prompt is not all in the cache yet, so it got no logits."""


def _to_cache(layers: Sequence[LayerCache]) -> Any:
    from transformers import DynamicCache

    cache = DynamicCache()
    for index, (keys, values) in enumerate(layers):
        cache.update(keys, values, index)
    return cache


def _layers(cache: Any) -> list[LayerCache]:
    return [(layer.keys, layer.values) for layer in cache.layers]


def _cached_length(row: CachedRow) -> int:
    """Tokens of the row whose keys and values its cache holds."""
    return 0 if row.cache is None else row.cache[0][0].shape[2]


class CachedDecoder:
    """Advances rows of a transformers causal LM by one token each, with their caches."""

    def __init__(self, model: nn.Module, prefill_chunk_tokens: int) -> None:
        if prefill_chunk_tokens < 1:
            raise ValueError(f"prefill_chunk_tokens must be >= 1, got {prefill_chunk_tokens}")
        self.model = model
        self.prefill_chunk_tokens = prefill_chunk_tokens
        # transformers 5.25 renamed `past_key_values` to `cache` (argument and output).
        accepted = inspect.signature(model.forward).parameters
        self._cache_name = "cache" if "cache" in accepted else "past_key_values"
        self._batch: tuple[tuple[CachedRow, ...], Any, torch.Tensor | None] | None = None
        """The last decode's rows, its batched cache and mask: the same rows decoding again
        (the steady state) reuse them instead of packing their caches anew."""

    def _forward(self, cache: Any = None, **inputs: Any) -> tuple[torch.Tensor, Any]:
        """The model's logits and its cache, after `inputs` (and a cache, if any)."""
        out = self.model(**inputs, **{self._cache_name: cache}, use_cache=True)
        logits: torch.Tensor = out.logits
        return logits, getattr(out, self._cache_name)

    @property
    def device(self) -> torch.device:
        """Where the model's weights are (the server moves it after loading)."""
        return next(self.model.parameters()).device

    def step(self, rows: Sequence[CachedRow]) -> torch.Tensor:
        """Next-token logits `[rows not prefilling, vocab]`, in the order of `rows`.

        Rows whose prompt is in the cache decode; the others get this step's prefill chunks
        in order and stay `prefilling` until their last prompt token is in the cache.
        """
        logits: list[torch.Tensor | None] = [None] * len(rows)
        # One token left to run (a decoding row's newest, or a prompt's last after its chunks)
        # is a decode against the row's cache.
        running = [i for i, row in enumerate(rows) if row.cache is not None and _pending(row) == 1]
        chunks = self._chunks(rows, set(running))
        with torch.inference_mode():
            first = {i: take for i, take in chunks.items() if rows[i].cache is None}
            if first:
                self._prefill_first(rows, first, logits)
            for i, take in chunks.items():
                if i not in first:
                    logits[i] = self._prefill_more(rows[i], take)
            if not running:
                self._batch = None  # nothing decodes: the last batch's cache goes
            else:
                decoded = self._decode([rows[i] for i in running])
                for i, row_logits in zip(running, decoded, strict=True):
                    logits[i] = row_logits
        for row, row_logits in zip(rows, logits, strict=True):
            row.prefilling = row_logits is None
        ready = [row_logits for row_logits in logits if row_logits is not None]
        if not ready:
            return torch.empty(0, 0, device=self.device)
        return torch.stack(ready)

    def _chunks(self, rows: Sequence[CachedRow], running: set[int]) -> dict[int, int]:
        """Prompt tokens each waiting row prefills this step, in order, within the budget."""
        budget = self.prefill_chunk_tokens
        chunks: dict[int, int] = {}
        for i, row in enumerate(rows):
            if i in running or budget == 0:
                continue
            take = min(_pending(row), budget)
            chunks[i] = take
            budget -= take
        return chunks

    def _prefill_first(
        self, rows: Sequence[CachedRow], first: dict[int, int], logits: list[torch.Tensor | None]
    ) -> None:
        """Rows' first chunks in one right-padded forward; each keeps its part of the cache."""
        tokens = [
            torch.tensor((rows[i].prompt + rows[i].generated)[:take], dtype=torch.long)
            for i, take in first.items()
        ]
        batch = pad_sequence(tokens, batch_first=True, padding_value=PAD_ID).to(self.device)
        out, cache = self._forward(input_ids=batch)
        layers = _layers(cache)
        for b, (i, take) in enumerate(first.items()):
            row = rows[i]
            row.cache = [(k[b : b + 1, :, :take], v[b : b + 1, :, :take]) for k, v in layers]
            if _pending(row) == 0:
                logits[i] = out[b, take - 1]

    def _prefill_more(self, row: CachedRow, take: int) -> torch.Tensor | None:
        """The row's next chunk against its cache; its logits if that ends its prompt."""
        start = _cached_length(row)
        tokens = (row.prompt + row.generated)[start : start + take]
        positions = torch.arange(start, start + take, device=self.device).unsqueeze(0)
        assert row.cache is not None
        out, cache = self._forward(
            _to_cache(row.cache),
            input_ids=torch.tensor([tokens], device=self.device),
            position_ids=positions,
        )
        row.cache = _layers(cache)
        return out[0, -1] if _pending(row) == 0 else None

    def _decode(self, rows: Sequence[CachedRow]) -> torch.Tensor:
        """Run each row's last token against its cache, all rows in one forward."""
        caches = [row.cache for row in rows if row.cache is not None]
        lengths = [cache[0][0].shape[2] for cache in caches]
        longest = max(lengths)
        device = self.device
        newest = [(row.generated or row.prompt)[-1] for row in rows]
        input_ids = torch.tensor(newest, device=device).unsqueeze(1)
        positions = torch.tensor([[length] for length in lengths], device=device)
        previous = self._batch
        if (
            previous is not None
            and len(previous[0]) == len(rows)
            and all(a is b for a, b in zip(previous[0], rows, strict=True))
        ):
            cache, mask = previous[1], previous[2]
            if mask is not None:
                mask = torch.cat([mask, mask.new_ones(len(rows), 1)], dim=1)
        else:
            mask = None  # rows of one length need none
            if len(set(lengths)) > 1:
                mask = torch.zeros(len(rows), longest + 1, dtype=torch.long, device=device)
                for b, length in enumerate(lengths):
                    mask[b, longest - length :] = 1
            cache = _to_cache(
                [_left_padded([c[i] for c in caches], longest) for i in range(len(caches[0]))]
            )
        logits, cache = self._forward(
            cache, input_ids=input_ids, attention_mask=mask, position_ids=positions
        )
        self._batch = (tuple(rows), cache, mask)
        layers = _layers(cache)
        for b, (row, length) in enumerate(zip(rows, lengths, strict=True)):
            start = longest - length
            row.cache = [(k[b : b + 1, :, start:], v[b : b + 1, :, start:]) for k, v in layers]
        return logits[:, -1]


def _pending(row: CachedRow) -> int:
    """The row's tokens not yet in its cache (1 for a decoding row: its newest token)."""
    return len(row.prompt) + len(row.generated) - _cached_length(row)


def _left_padded(rows: Sequence[LayerCache], longest: int) -> LayerCache:
    """One layer's caches of several rows as one batch, each row right-aligned at `longest`."""
    keys, values = rows[0]
    shape = (len(rows), keys.shape[1], longest, keys.shape[3])
    batch_keys = keys.new_zeros(shape)
    batch_values = values.new_zeros(shape)
    for b, (k, v) in enumerate(rows):
        batch_keys[b, :, longest - k.shape[2] :] = k[0]
        batch_values[b, :, longest - v.shape[2] :] = v[0]
    return batch_keys, batch_values
