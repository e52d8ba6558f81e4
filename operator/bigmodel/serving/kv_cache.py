"""Generation with a key/value cache for transformers causal LMs, one batched step at a time.

A step takes any mix of rows. Running rows decode their last token together, from their
slots in `KVSlots` (preallocated buffers written in place: each at its own position, under a
mask hiding the others' padding). Newcomers are prefilled in **chunks**: each step runs at
most `prefill_chunk_tokens` prompt tokens, given to the waiting rows in arrival order, so a
long prompt is spread over several steps and a running row's gap between two tokens stays
one step whose prefill share is bounded. A row's first chunk joins the other first chunks in
one right-padded forward (causality keeps each row's tokens exact; each row keeps only its
own positions of the cache); a later chunk runs against the row's cache. A row gets its
first token from the step that prefills its last prompt token, and takes a slot (one copy of
its prefilled cache) when it first decodes. Rows join and leave between any two steps: a row
missing from a step, or `retain`ed out, frees its slot. Runs on the device worker thread.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from bigmodel.serving.kv_slots import (
    CachedRow,
    KVSlots,
    LayerCache,
    decode_mask,
    layer_windows,
)

PAD_ID = 0
MASK_KINDS = ("sdpa", "eager")
"""Attention implementations that take the decoder's 4-D masks (boolean for sdpa)."""


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

    def __init__(self, model: nn.Module, prefill_chunk_tokens: int) -> None:
        if prefill_chunk_tokens < 1:
            raise ValueError(f"prefill_chunk_tokens must be >= 1, got {prefill_chunk_tokens}")
        config = model.config
        attention = getattr(config, "_attn_implementation", None) or "eager"
        if attention not in MASK_KINDS:
            raise ValueError(
                f"attention implementation {attention!r}: the KV cache needs one of "
                f"{', '.join(MASK_KINDS)} (load the model with attn_implementation='sdpa')"
            )
        self.model = model
        self.prefill_chunk_tokens = prefill_chunk_tokens
        self.slots = KVSlots()
        """The decoding rows' caches."""
        self._windows = layer_windows(config)
        self._boolean_masks = attention == "sdpa"
        # transformers 5.25 renamed `past_key_values` to `cache` (argument and output).
        accepted = inspect.signature(model.forward).parameters
        self._cache_name = "cache" if "cache" in accepted else "past_key_values"

    def _forward(self, cache: Any = None, **inputs: Any) -> tuple[torch.Tensor, Any]:
        """The model's logits and its cache, after `inputs` (and a cache, if any)."""
        out = self.model(**inputs, **{self._cache_name: cache}, use_cache=True)
        logits: torch.Tensor = out.logits
        return logits, getattr(out, self._cache_name)

    @property
    def device(self) -> torch.device:
        """Where the model's weights are (the server moves it after loading)."""
        return next(self.model.parameters()).device

    def retain(self, rows: Iterable[CachedRow]) -> None:
        """Free the slot of every decoding row not in `rows` (finished, or withdrawn)."""
        keep = {id(row) for row in rows}
        with torch.inference_mode():  # the buffers are inference tensors
            for row in [row for row in self.slots.rows if id(row) not in keep]:
                self.slots.leave(row)
                row.cached = 0

    def step(self, rows: Sequence[CachedRow]) -> torch.Tensor:
        """Next-token logits `[rows not prefilling, vocab]`, in the order of `rows`.

        Rows whose prompt is in the cache decode; the others get this step's prefill chunks
        in order and stay `prefilling` until their last prompt token is in the cache. A row
        that held a slot and is not in `rows` leaves.
        """
        logits: list[torch.Tensor | None] = [None] * len(rows)
        # One token left to run (a decoding row's newest, or a prompt's last after its chunks)
        # is a decode against the row's cache.
        running = [i for i, row in enumerate(rows) if row.cached and _pending(row) == 1]
        self.retain(rows[i] for i in running)
        chunks = self._chunks(rows, set(running))
        with torch.inference_mode():
            first = {i: take for i, take in chunks.items() if not rows[i].cached}
            if first:
                self._prefill_first(rows, first, logits)
            for i, take in chunks.items():
                if i not in first:
                    logits[i] = self._prefill_more(rows[i], take)
            if running:
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
            row.cached = take
            if _pending(row) == 0:
                logits[i] = out[b, take - 1]

    def _prefill_more(self, row: CachedRow, take: int) -> torch.Tensor | None:
        """The row's next chunk against its cache; its logits if that ends its prompt."""
        start = row.cached
        tokens = (row.prompt + row.generated)[start : start + take]
        positions = torch.arange(start, start + take, device=self.device).unsqueeze(0)
        assert row.cache is not None
        out, cache = self._forward(
            _to_cache(row.cache),
            input_ids=torch.tensor([tokens], device=self.device),
            position_ids=positions,
        )
        row.cache = _layers(cache)
        row.cached = start + take
        return out[0, -1] if _pending(row) == 0 else None

    def _decode(self, rows: Sequence[CachedRow]) -> torch.Tensor:
        """Run each row's last token against its slot, all rows in one forward; their logits
        in the order of `rows`."""
        slots = self.slots
        for row in rows:
            if slots.slot(row) is None:
                assert row.cache is not None
                slots.join(row, row.cache)
                row.cache = None  # its prefilled keys and values now live in the slot
        newest = [0] * len(rows)
        order = [0] * len(rows)
        for i, row in enumerate(rows):
            slot = slots.slot(row)
            assert slot is not None
            newest[slot] = (row.generated or row.prompt)[-1]
            order[i] = slot
        cache, positions, width = slots.cache()
        dtype = None if self._boolean_masks else slots.keys[0].dtype
        masks = {
            kind: decode_mask(positions, width, window, dtype)
            for kind, window in self._windows.items()
        }
        out, _ = self._forward(
            cache,
            input_ids=torch.tensor(newest, device=self.device).unsqueeze(1),
            # One mask for one kind of layer; a mix (some sliding) by layer type.
            attention_mask=next(iter(masks.values())) if len(masks) == 1 else masks,
            position_ids=positions.unsqueeze(1),
        )
        slots.advanced()
        return out[order, -1]


def _pending(row: CachedRow) -> int:
    """The row's tokens not yet in its cache (1 for a decoding row: its newest token)."""
    return len(row.prompt) + len(row.generated) - row.cached
