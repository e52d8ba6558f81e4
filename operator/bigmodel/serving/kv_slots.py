"""Preallocated keys and values of the decoding rows, written in place: no token copies a cache.

Per layer, one keys and one values buffer `[slots, heads, columns, dim]`. The row in slot s
holds its first `lengths[s]` positions from column 0 (rows of different lengths are
right-padded). A decode step writes each row's new keys and values at its own column and
attends over a view of the first `max(lengths) + 1` columns (a strided view: SDPA reads it
as it is), under a mask that hides each row's unused columns. Decoding rows fill slots
0..n-1: a row that joins takes slot n (one copy of its own prefilled cache), a row that leaves
gets the last row moved into its slot (one copy of that row alone), so no row's coming or
going copies the others. Slots and columns double when full and halve when a quarter is
used: a resize copies every row, but each row is copied O(1) times per token, amortized.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import torch

LayerCache = tuple[torch.Tensor, torch.Tensor]
"""One layer's keys and values of one row: `[1, heads, length, dim]` each."""
MIN_SLOTS = 4
MIN_COLUMNS = 64
FULL, SLIDING = "full_attention", "sliding_attention"
"""The layer types (transformers' `config.layer_types`) whose masks the decoder builds."""


class CachedRow(Protocol):
    """A generating row: its tokens so far, and how many of them the decoder has cached."""

    prompt: list[int]
    generated: list[int]
    cached: int
    """Tokens whose keys and values are cached: all but the newest once it decodes."""
    cache: list[LayerCache] | None
    """Its keys and values while its prompt is prefilled (None once it decodes from a slot)."""
    prefilling: bool
    """Set by each step: its prompt is not all in the cache yet, so it got no logits."""


def fitted(current: int, needed: int, minimum: int) -> int:
    """A capacity for `needed`: `current` doubled until it fits, halved while a quarter would
    do (never below `minimum`); `minimum` doubled until it fits when there is none yet."""
    capacity = current or minimum
    while capacity < needed:
        capacity *= 2
    while capacity > minimum and needed <= capacity // 4:
        capacity //= 2
    return capacity


class KVSlots:
    """The decoding rows' caches, one slot each, in buffers that grow and shrink by doubling."""

    def __init__(self) -> None:
        self.rows: list[CachedRow] = []
        """The row in each used slot, in slot order."""
        self.lengths: list[int] = []
        """Positions each slot holds."""
        self.keys: list[torch.Tensor] = []
        """Per layer `[slots, heads, columns, dim]`; empty while no row decodes."""
        self.values: list[torch.Tensor] = []
        self._slot: dict[int, int] = {}
        """`id(row)` -> its slot (the rows are held in `rows`, so the ids stay theirs)."""

    @property
    def slots(self) -> int:
        """Rows the buffers have room for (0 without buffers)."""
        return self.keys[0].shape[0] if self.keys else 0

    @property
    def columns(self) -> int:
        """Positions per row the buffers have room for (0 without buffers)."""
        return self.keys[0].shape[2] if self.keys else 0

    def slot(self, row: CachedRow) -> int | None:
        """The row's slot; None when it holds none."""
        return self._slot.get(id(row))

    def join(self, row: CachedRow, layers: Sequence[LayerCache]) -> None:
        """Give `row` the next slot, holding `layers` (its prefilled keys and values)."""
        length = layers[0][0].shape[2]
        slot = len(self.rows)
        # Room for the next decode's write as well.
        self._fit(slot + 1, max([length, *self.lengths]) + 1, layers)
        for buffer, (keys, _) in zip(self.keys, layers, strict=True):
            buffer[slot, :, :length] = keys[0]
        for buffer, (_, values) in zip(self.values, layers, strict=True):
            buffer[slot, :, :length] = values[0]
        self.rows.append(row)
        self.lengths.append(length)
        self._slot[id(row)] = slot

    def leave(self, row: CachedRow) -> None:
        """Free the row's slot: the last row moves into it; the buffers shrink when a quarter
        would hold what is left, and go when no row is left."""
        slot = self._slot.pop(id(row))
        last = len(self.rows) - 1
        if slot != last:
            moved, length = self.rows[last], self.lengths[last]
            for buffer in (*self.keys, *self.values):
                buffer[slot, :, :length] = buffer[last, :, :length]
            self.rows[slot], self.lengths[slot] = moved, length
            self._slot[id(moved)] = slot
        self.rows.pop()
        self.lengths.pop()
        if not self.rows:
            self.keys, self.values = [], []
        else:
            self._fit(len(self.rows), max(self.lengths) + 1, ())

    def _fit(self, rows: int, columns: int, like: Sequence[LayerCache]) -> None:
        """Resize the buffers (copying what the slots hold) to a capacity fitted to `rows`
        rows of `columns` positions; the first buffers take their shapes from `like`."""
        slots = fitted(self.slots, rows, MIN_SLOTS)
        width = fitted(self.columns, columns, MIN_COLUMNS)
        if (slots, width) == (self.slots, self.columns):
            return
        used, longest = len(self.rows), max(self.lengths, default=0)
        self.keys = [
            _resized(old, slots, width, used, longest)
            for old in self.keys or [keys for keys, _ in like]
        ]
        self.values = [
            _resized(old, slots, width, used, longest)
            for old in self.values or [values for _, values in like]
        ]

    def cache(self) -> tuple[Any, torch.Tensor, int]:
        """A transformers cache over the used slots for one decode step (each row's new keys
        and values written at its own column), the rows' positions `[rows]` and the columns
        the step attends over."""
        from transformers.cache_utils import Cache  # only a Hugging Face model has slots

        width = max(self.lengths) + 1
        self._fit(len(self.rows), width, ())  # room for this step's write
        device = self.keys[0].device
        positions = torch.tensor(self.lengths, device=device)
        layers = [
            _SlotLayer(keys, values, positions, width)
            for keys, values in zip(self.keys, self.values, strict=True)
        ]
        return Cache(layers=layers), positions, width

    def advanced(self) -> None:
        """After a decode step: every row holds one more position."""
        self.lengths = [length + 1 for length in self.lengths]
        for row, length in zip(self.rows, self.lengths, strict=True):
            row.cached = length


def _resized(old: torch.Tensor, slots: int, width: int, used: int, longest: int) -> torch.Tensor:
    """A buffer of `slots` x `width` shaped like `old` per position, with `old`'s first
    `used` slots' first `longest` positions copied."""
    new = old.new_zeros(slots, old.shape[1], width, old.shape[3])
    new[:used, :, :longest] = old[:used, :, :longest]
    return new


class _SlotLayer:
    """One layer's slots seen by the model for one decode step: a transformers cache layer
    (`CacheLayerMixin`'s interface) that writes in place."""

    is_sliding = False
    is_initialized = True

    def __init__(
        self, keys: torch.Tensor, values: torch.Tensor, positions: torch.Tensor, width: int
    ) -> None:
        self.keys, self.values = keys, values
        self._rows = len(positions)
        self._width = width
        # Where each (row, head)'s new position lies in the buffer seen as [-1, dim]: one
        # index_copy_ writes them all (an indexed assignment costs twice as much).
        _, heads, columns, _ = keys.shape
        first = torch.arange(self._rows * heads, device=keys.device).view(self._rows, heads)
        self._at = (first * columns + positions.unsqueeze(1)).view(-1)

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write each row's one new position in place; the rows' keys and values so far."""
        for buffer, new in ((self.keys, key_states), (self.values, value_states)):
            buffer.view(-1, buffer.shape[3]).index_copy_(0, self._at, new.reshape(-1, new.shape[3]))
        rows = self._rows
        return self.keys[:rows, :, : self._width], self.values[:rows, :, : self._width]

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        """The attention's key length and offset (the decoder passes its own mask)."""
        return self._width, 0

    def get_seq_length(self) -> int:
        """The longest row's cached positions."""
        return self._width - 1

    def get_max_length(self) -> int:
        """Columns the buffers hold."""
        return self.keys.shape[2]


def layer_windows(config: Any) -> dict[str, int | None]:
    """Each of the model's attention layer types -> its sliding window (None: full); ValueError
    naming a layer type whose mask the decoder cannot build."""
    window = getattr(config, "sliding_window", None)
    types = getattr(config, "layer_types", None) or [SLIDING if window else FULL]
    unknown = sorted(set(types) - {FULL, SLIDING})
    if unknown:
        raise ValueError(
            f"config.layer_types has {unknown}: the KV cache builds masks for {FULL!r} and "
            f"{SLIDING!r} layers only"
        )
    return {kind: window if kind == SLIDING else None for kind in set(types)}


def decode_mask(
    positions: torch.Tensor, width: int, window: int | None, dtype: torch.dtype | None
) -> torch.Tensor:
    """The attention mask `[rows, 1, 1, width]` of rows decoding at `positions`: each sees
    its own positions up to its new one (within `window` of it when sliding). Boolean (True:
    attend) for `dtype` None, else additive in `dtype` (0 or its minimum)."""
    columns = torch.arange(width, device=positions.device)
    newest = positions.unsqueeze(1)
    allowed = columns <= newest
    if window is not None:
        allowed &= columns > newest - window
    allowed = allowed[:, None, None, :]
    if dtype is None:
        return allowed
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(
        ~allowed, torch.finfo(dtype).min
    )
