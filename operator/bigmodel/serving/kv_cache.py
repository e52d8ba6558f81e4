"""Generation with a key/value cache for transformers causal LMs, one batched step at a time.

Each generating row keeps its own cache: per layer, keys and values `[1, heads, length,
dim]` of every token it has seen. A step takes any mix of rows: newcomers are prefilled
together (right-padded: causality keeps each row's first tokens exact, and each row keeps
only its own positions of the cache), running rows decode their last token together (their
caches left-padded to one length under an attention mask, each at its own position). So
rows join and leave between any two steps, a newcomer's prefill delays the running rows by
one forward at most, and a row that leaves frees its cache with it. Runs on the device
worker thread.
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


def _to_cache(layers: Sequence[LayerCache]) -> Any:
    from transformers import DynamicCache

    cache = DynamicCache()
    for index, (keys, values) in enumerate(layers):
        cache.update(keys, values, index)
    return cache


def _layers(cache: Any) -> list[LayerCache]:
    return [(layer.keys, layer.values) for layer in cache.layers]


class CachedDecoder:
    """Advances rows of a transformers causal LM by one token each, with their caches."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
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
        """Next-token logits `[len(rows), vocab]`; each row's cache then covers its tokens."""
        logits: list[torch.Tensor | None] = [None] * len(rows)
        fresh = [i for i, row in enumerate(rows) if row.cache is None]
        running = [i for i, row in enumerate(rows) if row.cache is not None]
        with torch.inference_mode():
            if fresh:
                prefilled = self._prefill([rows[i] for i in fresh])
                for i, row_logits in zip(fresh, prefilled, strict=True):
                    logits[i] = row_logits
            if not running:
                self._batch = None  # nothing decodes: the last batch's cache goes
            else:
                decoded = self._decode([rows[i] for i in running])
                for i, row_logits in zip(running, decoded, strict=True):
                    logits[i] = row_logits
        return torch.stack([row_logits for row_logits in logits if row_logits is not None])

    def _prefill(self, rows: Sequence[CachedRow]) -> torch.Tensor:
        """Run each row's whole prompt; keep each row's part of the cache."""
        tokens = [torch.tensor(row.prompt + row.generated, dtype=torch.long) for row in rows]
        lengths = [len(row) for row in tokens]
        batch = pad_sequence(tokens, batch_first=True, padding_value=PAD_ID).to(self.device)
        logits, cache = self._forward(input_ids=batch)
        layers = _layers(cache)
        for b, (row, length) in enumerate(zip(rows, lengths, strict=True)):
            row.cache = [(k[b : b + 1, :, :length], v[b : b + 1, :, :length]) for k, v in layers]
        last = torch.tensor(lengths, device=self.device) - 1
        return logits[torch.arange(len(rows), device=self.device), last]

    def _decode(self, rows: Sequence[CachedRow]) -> torch.Tensor:
        """Run each row's last token against its cache, all rows in one forward."""
        caches = [row.cache for row in rows if row.cache is not None]
        lengths = [cache[0][0].shape[2] for cache in caches]
        longest = max(lengths)
        device = self.device
        input_ids = torch.tensor([[row.generated[-1]] for row in rows], device=device)
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
