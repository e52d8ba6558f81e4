"""The batched forward on a real tiny model: padding, last-position logits, warm-up checks."""

from __future__ import annotations

import pytest
import torch

from bigmodel.serving import ServedModel
from bigmodel.serving.forward import ForwardRunner, ModelWork
from support.serving import tiny_model

CPU = torch.device("cpu")


@pytest.fixture
def runner() -> ForwardRunner:
    served = tiny_model()
    served.module.eval()
    return ForwardRunner(served, CPU)


def test_the_logits_are_the_models_own_at_the_last_position(runner: ForwardRunner) -> None:
    tokens = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 8]])
    with torch.no_grad():
        expected = runner.served.module(tokens)[:, -1]
    assert torch.allclose(runner.next_token_logits(list(tokens)), expected, atol=1e-6)


def test_rows_of_different_lengths_batched_together_get_their_own_logits(
    runner: ForwardRunner,
) -> None:
    rows = [torch.tensor([3, 1, 4, 1, 5, 9, 2, 6]), torch.tensor([2, 7]), torch.tensor([1])]
    batched = runner.next_token_logits(rows)
    alone = torch.cat([runner.next_token_logits([row]) for row in rows])
    assert batched.shape == (3, runner.served.vocab_size)
    assert torch.allclose(batched, alone, atol=1e-5)


def test_warm_up_passes_for_a_sound_model(runner: ForwardRunner) -> None:
    runner.warm_up()


def test_warm_up_refuses_a_model_whose_vocabulary_is_not_the_declared_one() -> None:
    model = tiny_model()
    wrong = ServedModel(model.module, model.vocab_size + 1, model.context_length)
    with pytest.raises(ValueError, match="warm-up logits have shape"):
        ForwardRunner(wrong, CPU).warm_up()


def test_warm_up_refuses_a_model_that_gives_non_finite_logits() -> None:
    model = tiny_model()
    with torch.no_grad():
        next(model.module.parameters()).fill_(float("nan"))
    with pytest.raises(ValueError, match="non-finite"):
        ForwardRunner(model, CPU).warm_up()


class Rows(ModelWork):
    """Rows whose `advance` may fail (a sampling error), recording the logits it got."""

    def __init__(self, rows: list[list[int]], fail: bool = False) -> None:
        self.tokens = [torch.tensor(row) for row in rows]
        self.fail = fail
        self.logits: torch.Tensor | None = None

    @property
    def rows(self) -> int:
        return len(self.tokens)

    def windows(self, context_length: int) -> list[torch.Tensor]:
        return self.tokens

    def advance(self, logits: torch.Tensor) -> None:
        if self.fail:
            raise ValueError("cannot sample")
        self.logits, self.done = logits.clone(), True


def test_a_work_that_fails_fails_alone_and_its_batch_mates_get_their_logits(
    runner: ForwardRunner,
) -> None:
    good, bad, other = Rows([[1, 2]]), Rows([[3]], fail=True), Rows([[4, 5, 6], [7]])
    runner.run([good, bad, other])
    assert (bad.done, str(bad.error)) == (True, "cannot sample")
    assert good.error is None and other.error is None
    assert good.logits is not None and other.logits is not None
    assert torch.allclose(good.logits, runner.next_token_logits([torch.tensor([1, 2])]), atol=1e-5)
    assert other.logits.shape == (2, runner.served.vocab_size)
