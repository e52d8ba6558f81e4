"""Generation with a KV cache: exactly the tokens a full recompute gives, whatever the batch."""

from __future__ import annotations

import pytest
import torch

from bigmodel.serving.generation import Row
from bigmodel.serving.hf_loading import load_hf
from bigmodel.serving.model import ServedModel
from support.llm import tiny_lm_dir

pytest.importorskip("transformers", reason="needs the llm extra: pip install -e '.[llm]'")

PROMPTS = ("The operator turns", "Hello", "A model server answers chat completions")


@pytest.fixture(scope="module")
def served() -> ServedModel:
    return load_hf(str(tiny_lm_dir()))


def recomputed(served: ServedModel, prompt: list[int], count: int) -> list[int]:
    """Greedy tokens from full forwards over the whole sequence (no cache)."""
    ids, out = list(prompt), []
    for _ in range(count):
        with torch.inference_mode():
            token = int(served.module(torch.tensor([ids]))[0, -1].argmax())
        ids.append(token)
        out.append(token)
    return out


def greedy_steps(served: ServedModel, rows: list[Row], joins: dict[int, Row], steps: int) -> None:
    """Run `steps` decoder steps; `joins[step]` joins the batch before that step."""
    assert served.decoder is not None
    active: list[Row] = []
    for step in range(steps):
        if step in joins:
            active.append(joins[step])
        logits = served.decoder.step(active)
        for row, row_logits in zip(active, logits, strict=True):
            row.generated.append(int(row_logits.argmax()))


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


def test_each_rows_cache_holds_exactly_its_own_tokens_but_the_newest(served: ServedModel) -> None:
    rows = [Row(encoded(served, text)) for text in PROMPTS]
    greedy_steps(served, rows, {0: rows[0], 2: rows[1], 4: rows[2]}, 6)
    for row in rows:
        assert row.cache is not None
        assert row.cache[0][0].shape[2] == len(row.prompt) + len(row.generated) - 1
