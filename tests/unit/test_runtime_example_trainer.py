"""The example trainer's pieces: options, straggler settings, checkpoints, the model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bigmodel.runtime.example_trainer import (
    Slowdown,
    latest_checkpoint,
    parse_args,
    read_slowdown,
    save_checkpoint,
)
from bigmodel.runtime.model import CharCorpus, TinyLM, synthetic_corpus


def test_defaults_parse() -> None:
    args = parse_args([])
    assert args.steps > 0 and args.checkpoint_dir is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--steps", "0"], "--steps: must be >= 1"),
        (["--lr", "-1"], "--lr: must be > 0"),
        (["--d-model", "30", "--heads", "4"], "not divisible by --heads"),
        (["--checkpoint-every", "-5"], "--checkpoint-every: must be >= 0"),
    ],
)
def test_bad_options_exit_2_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("slowdown", "node_rank", "step", "applies"),
    [
        (Slowdown(), 0, 0, False),
        (Slowdown(0.1), 3, 7, True),
        (Slowdown(0.1, node_rank=1), 0, 0, False),
        (Slowdown(0.1, node_rank=1), 1, 0, True),
        (Slowdown(0.1, until_step=5), 0, 4, True),
        (Slowdown(0.1, until_step=5), 0, 5, False),
    ],
)
def test_slowdown_applies_to_the_chosen_node_and_steps(
    slowdown: Slowdown, node_rank: int, step: int, applies: bool
) -> None:
    assert slowdown.applies(node_rank, step) is applies


def test_slowdown_is_read_from_the_environment() -> None:
    env = {
        "BIGMODEL_SLOWDOWN_SECONDS": "0.2",
        "BIGMODEL_SLOWDOWN_NODE_RANK": "1",
        "BIGMODEL_SLOWDOWN_UNTIL_STEP": "10",
    }
    assert read_slowdown(env) == Slowdown(0.2, 1, 10)
    assert read_slowdown({}) == Slowdown()


def test_a_slowdown_of_a_machine_applies_only_on_that_machine() -> None:
    env = {"BIGMODEL_SLOWDOWN_SECONDS": "0.5", "BIGMODEL_SLOWDOWN_MACHINE": "node-b"}
    assert read_slowdown({**env, "BIGMODEL_NODE_NAME": "node-b"}) == Slowdown(0.5)
    assert read_slowdown({**env, "BIGMODEL_NODE_NAME": "node-a"}) == Slowdown()


@pytest.mark.parametrize(
    "env",
    [
        {"BIGMODEL_SLOWDOWN_SECONDS": "slow"},
        {"BIGMODEL_SLOWDOWN_NODE_RANK": "-1"},
        {"BIGMODEL_SLOWDOWN_MACHINE": "node-b"},  # without BIGMODEL_NODE_NAME
    ],
)
def test_bad_slowdown_values_name_the_variable(env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=next(iter(env))):
        read_slowdown(env)


def test_checkpoints_are_atomic_pruned_and_the_latest_is_found(tmp_path: Path) -> None:
    assert latest_checkpoint(tmp_path) is None
    for step in (5, 10, 100):
        save_checkpoint(tmp_path, step, {"step": step})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-000000010.pt", "step-000000100.pt"]
    latest = latest_checkpoint(tmp_path)
    assert latest is not None and torch.load(latest)["step"] == 100


def test_the_corpus_is_deterministic_and_batches_depend_on_the_seed_only() -> None:
    assert synthetic_corpus() == synthetic_corpus()
    corpus = CharCorpus(synthetic_corpus(sentences=50))
    first, again, other = (corpus.batch(4, 16, seed) for seed in (1, 1, 2))
    assert torch.equal(first[0], again[0]) and not torch.equal(first[0], other[0])
    assert torch.equal(first[0][:, 1:], first[1][:, :-1])  # targets are the next characters


def test_the_model_is_causal() -> None:
    torch.manual_seed(0)
    model = TinyLM(vocab=10, d_model=16, layers=1, heads=2, seq_len=8).eval()
    tokens = torch.randint(0, 10, (1, 8))
    changed = tokens.clone()
    changed[0, -1] = (tokens[0, -1] + 1) % 10
    with torch.no_grad():
        a, b = model(tokens), model(changed)
    assert a.shape == (1, 8, 10)
    assert torch.allclose(a[:, :-1], b[:, :-1], atol=1e-6)
    assert not torch.allclose(a[:, -1], b[:, -1])
