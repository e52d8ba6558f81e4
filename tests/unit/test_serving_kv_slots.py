"""The decoding rows' preallocated caches: written in place, rows joining and leaving without
copying the others, capacity doubling and halving, masks for rows of different lengths, and
exact greedy output in float32 and bfloat16."""

from __future__ import annotations

import pytest
import torch

from bigmodel.serving.generation import Row
from bigmodel.serving.kv_slots import (
    MIN_COLUMNS,
    MIN_SLOTS,
    KVSlots,
    LayerCache,
    decode_mask,
    fitted,
    layer_windows,
)

HEADS, DIM, LAYERS = 2, 4, 3


def prefilled(length: int, mark: float) -> list[LayerCache]:
    """A row's prefilled cache: every position of layer l holds `mark + l` (keys) and
    `-(mark + l)` (values), so whose data sits where can be read back."""
    return [
        (
            torch.full((1, HEADS, length, DIM), mark + layer),
            torch.full((1, HEADS, length, DIM), -(mark + layer)),
        )
        for layer in range(LAYERS)
    ]


def held(slots: KVSlots, row: Row) -> torch.Tensor:
    """The keys of the row's slot in layer 0, over the positions it holds."""
    slot = slots.slot(row)
    assert slot is not None
    return slots.keys[0][slot, :, : slots.lengths[slot]]


def decode_once(slots: KVSlots, marks: list[float]) -> None:
    """One decode step's cache writes: row i writes keys `marks[i]` at its position."""
    cache, _, width = slots.cache()
    keys = torch.tensor(marks).view(-1, 1, 1, 1).expand(len(marks), HEADS, 1, DIM)
    for layer in range(LAYERS):
        out_keys, _ = cache.update(keys, -keys, layer)
        assert out_keys.shape == (len(marks), HEADS, width, DIM)
    slots.advanced()


@pytest.mark.parametrize(
    ("current", "needed", "expected"),
    [
        (0, 5, 8),  # none yet: the minimum, doubled until it fits
        (0, 1, 4),
        (8, 8, 8),  # it fits: unchanged
        (8, 9, 16),  # doubled
        (8, 40, 64),  # doubled until it fits
        (64, 17, 64),  # more than a quarter used: kept
        (64, 16, 32),  # a quarter would do: halved
        (64, 1, 4),  # halved down to the minimum, never below
    ],
)
def test_capacity_doubles_to_fit_and_halves_when_a_quarter_would_do(
    current: int, needed: int, expected: int
) -> None:
    assert fitted(current, needed, 4) == expected


def test_a_decode_step_writes_each_rows_token_in_place_at_its_own_position() -> None:
    slots = KVSlots()
    short, long = Row([1]), Row([2])
    slots.join(short, prefilled(3, 10.0))
    slots.join(long, prefilled(7, 20.0))
    buffers = [t.data_ptr() for t in (*slots.keys, *slots.values)]
    decode_once(slots, [1.5, 2.5])
    decode_once(slots, [1.75, 2.75])
    assert [t.data_ptr() for t in (*slots.keys, *slots.values)] == buffers, "no copy"
    assert slots.lengths == [5, 9]
    assert (short.cached, long.cached) == (5, 9)
    assert held(slots, short)[0, :, 0].tolist() == [10.0, 10.0, 10.0, 1.5, 1.75]
    assert held(slots, long)[0, 6:, 0].tolist() == [20.0, 2.5, 2.75]


def test_the_step_attends_over_a_view_up_to_the_longest_row_plus_its_new_token() -> None:
    slots = KVSlots()
    slots.join(Row([1]), prefilled(3, 1.0))
    slots.join(Row([2]), prefilled(6, 2.0))
    cache, positions, width = slots.cache()
    assert positions.tolist() == [3, 6]
    assert width == 7
    keys, _ = cache.update(torch.zeros(2, HEADS, 1, DIM), torch.zeros(2, HEADS, 1, DIM), 0)
    assert keys.data_ptr() == slots.keys[0].data_ptr(), "a view of the buffer, not a copy"


def test_a_row_joining_copies_only_its_own_cache() -> None:
    slots = KVSlots()
    first = Row([1])
    slots.join(first, prefilled(4, 1.0))
    before = slots.keys[0][0].clone()
    pointers = [t.data_ptr() for t in slots.keys]
    second = Row([2])
    slots.join(second, prefilled(5, 2.0))
    assert [t.data_ptr() for t in slots.keys] == pointers, "within capacity: no resize"
    assert torch.equal(slots.keys[0][0], before), "the first row's slot is untouched"
    assert slots.slot(second) == 1
    assert bool((held(slots, second) == 2.0).all())
    assert bool((slots.values[2][1, :, :5] == -4.0).all()), "values, every layer"


def test_a_row_leaving_gets_the_last_row_moved_into_its_slot() -> None:
    slots = KVSlots()
    rows = [Row([i]) for i in range(3)]
    for i, row in enumerate(rows):
        slots.join(row, prefilled(3 + i, float(i)))
    slots.leave(rows[0])
    assert slots.rows == [rows[2], rows[1]]
    assert slots.slot(rows[0]) is None
    assert slots.slot(rows[2]) == 0
    assert slots.lengths == [5, 4]
    assert bool((held(slots, rows[2]) == 2.0).all())
    assert bool((held(slots, rows[1]) == 1.0).all()), "the middle row did not move"


def test_columns_double_when_a_row_outgrows_them_keeping_every_rows_tokens() -> None:
    slots = KVSlots()
    row, other = Row([1]), Row([2])
    slots.join(row, prefilled(MIN_COLUMNS - 2, 1.0))
    slots.join(other, prefilled(3, 2.0))
    assert slots.columns == MIN_COLUMNS
    decode_once(slots, [7.0, 8.0])  # writes position MIN_COLUMNS - 2: still fits
    assert slots.columns == MIN_COLUMNS
    decode_once(slots, [7.0, 8.0])  # writes MIN_COLUMNS - 1
    decode_once(slots, [7.0, 8.0])  # writes MIN_COLUMNS: doubled
    assert slots.columns == 2 * MIN_COLUMNS
    assert held(slots, row)[0, :, 0].tolist() == [1.0] * (MIN_COLUMNS - 2) + [7.0] * 3
    assert held(slots, other)[0, :, 0].tolist() == [2.0] * 3 + [8.0] * 3


def test_slots_double_when_rows_outnumber_them_and_halve_when_they_leave() -> None:
    slots = KVSlots()
    rows = [Row([i]) for i in range(2 * MIN_SLOTS + 1)]
    for i, row in enumerate(rows):
        slots.join(row, prefilled(2, float(i)))
    assert slots.slots == 4 * MIN_SLOTS
    for row in rows[:-2]:
        slots.leave(row)
    assert slots.slots == MIN_SLOTS, "two rows left: a quarter of the slots would do"
    assert [bool((held(slots, row) == i).all()) for i, row in enumerate(rows) if i >= 7] == [
        True,
        True,
    ]


def test_a_row_leaving_frees_memory_and_the_last_one_frees_the_buffers() -> None:
    slots = KVSlots()
    rows = [Row([i]) for i in range(2)]
    for row in rows:
        slots.join(row, prefilled(300, 1.0))
    assert slots.columns == 512
    slots.leave(rows[0])
    slots.leave(rows[1])
    assert (slots.keys, slots.values, slots.rows) == ([], [], [])
    assert (slots.slots, slots.columns) == (0, 0)


def test_a_long_row_leaving_shrinks_the_columns_to_what_the_others_need() -> None:
    slots = KVSlots()
    long, short = Row([1]), Row([2])
    slots.join(long, prefilled(300, 1.0))
    slots.join(short, prefilled(10, 2.0))
    slots.leave(long)
    assert slots.columns == MIN_COLUMNS
    assert bool((held(slots, short) == 2.0).all())


def test_the_decode_mask_hides_each_rows_padding() -> None:
    mask = decode_mask(torch.tensor([2, 4]), 5, None, None)
    assert mask.shape == (2, 1, 1, 5)
    assert mask[:, 0, 0].tolist() == [
        [True, True, True, False, False],
        [True, True, True, True, True],
    ]


def test_an_additive_decode_mask_is_zero_where_seen_and_the_dtype_minimum_elsewhere() -> None:
    mask = decode_mask(torch.tensor([1]), 3, None, torch.bfloat16)
    low = torch.finfo(torch.bfloat16).min
    assert mask.dtype == torch.bfloat16
    assert mask[0, 0, 0].tolist() == [0.0, 0.0, low]


def test_a_sliding_window_mask_sees_only_the_window_before_each_rows_new_token() -> None:
    mask = decode_mask(torch.tensor([5, 2]), 6, 3, None)
    assert mask[:, 0, 0].tolist() == [
        [False, False, False, True, True, True],
        [True, True, True, False, False, False],
    ]


class Config:
    def __init__(self, **fields: object) -> None:
        self.__dict__.update(fields)


def test_layer_windows_follow_the_config() -> None:
    assert layer_windows(Config()) == {"full_attention": None}
    assert layer_windows(Config(sliding_window=4096)) == {"sliding_attention": 4096}
    mixed = Config(sliding_window=512, layer_types=["sliding_attention", "full_attention"])
    assert layer_windows(mixed) == {"sliding_attention": 512, "full_attention": None}


def test_a_layer_type_without_a_mask_is_refused_by_name() -> None:
    config = Config(layer_types=["full_attention", "linear_attention"])
    with pytest.raises(ValueError, match="linear_attention"):
        layer_windows(config)
