"""Generation with a KV cache: exactly the tokens a full recompute gives, whatever the batch
and however the prompts are cut into prefill chunks."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from bigmodel.serving.forward import ForwardRunner
from bigmodel.serving.generation import Generation, Row, Sampling
from bigmodel.serving.hf_loading import load_hf
from bigmodel.serving.kv_cache import CachedDecoder
from bigmodel.serving.model import ServedModel
from support.llm import tiny_lm_dir

pytest.importorskip("transformers", reason="needs the llm extra: pip install -e '.[llm]'")

PROMPTS = ("The operator turns", "Hello", "A model server answers chat completions")


CHUNK = 8
"""The chunked decoder's prefill budget: a long prompt takes several steps."""


@pytest.fixture(scope="module")
def served() -> ServedModel:
    return load_hf(str(tiny_lm_dir()))


@pytest.fixture(scope="module")
def chunked() -> ServedModel:
    return load_hf(str(tiny_lm_dir()), prefill_chunk_tokens=CHUNK)


def recomputed(served: ServedModel, prompt: list[int], count: int) -> list[int]:
    """Greedy tokens from full forwards over the whole sequence (no cache)."""
    ids, out = list(prompt), []
    for _ in range(count):
        with torch.inference_mode():
            token = int(served.module(torch.tensor([ids]))[0, -1].argmax())
        ids.append(token)
        out.append(token)
    return out


def greedy_steps(
    served: ServedModel, rows: list[Row], joins: dict[int, Row], steps: int
) -> list[list[Row]]:
    """Run `steps` decoder steps; `joins[step]` joins the batch before that step. Returns
    each step's rows that got a token (not those still prefilling)."""
    assert served.decoder is not None
    active: list[Row] = []
    tokened: list[list[Row]] = []
    for step in range(steps):
        if step in joins:
            active.append(joins[step])
        logits = served.decoder.step(active)
        ready = [row for row in active if not row.prefilling]
        for row, row_logits in zip(ready, logits, strict=True):
            row.generated.append(int(row_logits.argmax()))
        tokened.append(ready)
    return tokened


def encoded(served: ServedModel, text: str) -> list[int]:
    assert served.tokenizer is not None
    return served.tokenizer.encode(text)


def test_a_lone_row_generates_what_full_recomputation_gives(served: ServedModel) -> None:
    row = Row(encoded(served, PROMPTS[0]))
    greedy_steps(served, [row], {0: row}, 10)
    assert row.generated == recomputed(served, row.prompt, 10)


def test_rows_joining_between_steps_generate_as_if_alone(served: ServedModel) -> None:
    rows = [Row(encoded(served, text)) for text in PROMPTS]
    greedy_steps(served, rows, {0: rows[0], 3: rows[1], 5: rows[2]}, 12)
    for row in rows:
        assert row.generated == recomputed(served, row.prompt, len(row.generated))


def test_a_row_leaving_the_batch_does_not_change_the_others(served: ServedModel) -> None:
    assert served.decoder is not None
    stays, leaves = Row(encoded(served, PROMPTS[2])), Row(encoded(served, PROMPTS[1]))
    for step in range(8):
        active = [stays, leaves] if step < 4 else [stays]
        for row, logits in zip(active, served.decoder.step(active), strict=True):
            row.generated.append(int(logits.argmax()))
    assert stays.generated == recomputed(served, stays.prompt, 8)


def test_each_rows_slot_holds_exactly_its_own_tokens_but_the_newest(served: ServedModel) -> None:
    assert served.decoder is not None
    slots = served.decoder.slots
    rows = [Row(encoded(served, text)) for text in PROMPTS]
    greedy_steps(served, rows, {0: rows[0], 2: rows[1], 4: rows[2]}, 6)
    for row in rows:
        slot = slots.slot(row)
        assert slot is not None
        assert row.cache is None, "its prefilled cache moved into the slot"
        assert row.cached == slots.lengths[slot] == len(row.prompt) + len(row.generated) - 1


def long_prompt(served: ServedModel, length: int) -> list[int]:
    """`length` tokens of ordinary text."""
    ids = encoded(served, " ".join(PROMPTS) * 4)
    assert len(ids) >= length
    return ids[:length]


def test_a_chunked_prefill_generates_what_full_recomputation_gives(chunked: ServedModel) -> None:
    rows = [Row(long_prompt(chunked, length)) for length in (3 * CHUNK + 1, 2 * CHUNK, 5)]
    greedy_steps(chunked, rows, {0: rows[0], 1: rows[1], 2: rows[2]}, 14)
    for row in rows:
        assert row.generated, "every row finished its prefill and generated"
        assert row.generated == recomputed(chunked, row.prompt, len(row.generated))


def test_a_long_prompt_arriving_never_delays_a_running_stream_by_a_step(
    chunked: ServedModel,
) -> None:
    running = Row(encoded(chunked, PROMPTS[0]))
    newcomer = Row(long_prompt(chunked, 5 * CHUNK))
    tokened = greedy_steps(chunked, [running, newcomer], {0: running, 2: newcomer}, 10)
    assert all(running in rows for rows in tokened), "a token every step"
    # The newcomer's prompt takes 5 steps of CHUNK tokens; its first token comes with the 5th.
    assert [newcomer in rows for rows in tokened] == [False] * 6 + [True] * 4
    assert running.generated == recomputed(chunked, running.prompt, 10)
    assert newcomer.generated == recomputed(chunked, newcomer.prompt, 4)


def test_a_step_prefills_at_most_its_chunk_of_prompt_tokens_and_each_token_once(
    chunked: ServedModel,
) -> None:
    decoder = chunked.decoder
    assert decoder is not None
    forwarded: list[int] = []

    def count(module: object, args: object, kwargs: dict[str, torch.Tensor]) -> None:
        forwarded.append(kwargs["input_ids"].numel())

    running = [Row(encoded(chunked, text)) for text in PROMPTS[:2]]
    newcomers = [Row(long_prompt(chunked, 3 * CHUNK - 2)) for _ in range(2)]
    active = list(running)
    prefilled: list[int] = []
    hook = decoder.model.register_forward_pre_hook(count, with_kwargs=True)
    try:
        for step in range(12):
            if step == 2:
                active += newcomers
            decoding = sum(1 for row in active if row.generated)
            forwarded.clear()
            logits = decoder.step(active)
            ready = [row for row in active if not row.prefilling]
            for row, row_logits in zip(ready, logits, strict=True):
                row.generated.append(int(row_logits.argmax()))
            if step >= 2:
                prefilled.append(sum(forwarded) - decoding)
    finally:
        hook.remove()
    assert max(prefilled) <= CHUNK
    assert sum(prefilled) == 2 * (3 * CHUNK - 2)
    for row in active:
        assert row.generated == recomputed(chunked, row.prompt, len(row.generated))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rows_of_different_lengths_generate_exactly_in_each_dtype(dtype: torch.dtype) -> None:
    served = load_hf(str(tiny_lm_dir()))
    served.module.to(dtype=dtype)
    assert served.decoder is not None
    rows = [Row(encoded(served, text)) for text in PROMPTS]
    greedy_steps(served, rows, {0: rows[0], 1: rows[1], 4: rows[2]}, 10)
    assert served.decoder.slots.keys[0].dtype == dtype
    for row in rows:
        assert row.generated == recomputed(served, row.prompt, len(row.generated))


def test_a_finished_generation_frees_its_slot_in_the_step_that_ends_it() -> None:
    served = load_hf(str(tiny_lm_dir()))
    assert served.decoder is not None and served.tokenizer is not None
    runner = ForwardRunner(served, torch.device("cpu"))
    short = Generation(
        [encoded(served, PROMPTS[1])], Sampling(max_tokens=3, temperature=0), served.tokenizer
    )
    long = Generation(
        [encoded(served, PROMPTS[2])], Sampling(max_tokens=9, temperature=0), served.tokenizer
    )
    slots = served.decoder.slots
    runner.run([short, long])
    runner.run([short, long])
    assert len(slots.rows) == 2
    runner.run([short, long])
    assert short.done and not long.done
    assert slots.rows == long.items, "the short one's slot went with its last token"
    while not long.done:
        runner.run([long])
    assert (slots.rows, slots.keys) == ([], []), "no buffers are kept once nothing decodes"
    assert long.items[0].generated == recomputed(served, long.items[0].prompt, 9)


def test_eager_attention_gets_additive_masks_and_generates_exactly() -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_lm_dir(), attn_implementation="eager")
    decoder = CachedDecoder(model.eval(), prefill_chunk_tokens=512)
    served = load_hf(str(tiny_lm_dir()))
    rows = [Row(encoded(served, text)) for text in PROMPTS]
    greedy_steps(
        dataclasses.replace(served, decoder=decoder), rows, {0: rows[0], 2: rows[1], 3: rows[2]}, 8
    )
    for row in rows:
        assert row.generated == recomputed(served, row.prompt, len(row.generated))
