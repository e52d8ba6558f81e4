"""Generation step by step on a real tiny model: greedy, seeded sampling, stops, the window."""

from __future__ import annotations

import pytest
import torch

from bigmodel.serving.forward import ForwardRunner
from bigmodel.serving.generation import Generation, Sampling
from support.serving import CONTEXT, tiny_model


@pytest.fixture
def runner() -> ForwardRunner:
    served = tiny_model()
    served.module.eval()
    return ForwardRunner(served, torch.device("cpu"))


def generate(
    runner: ForwardRunner, prompts: list[str], sampling: Sampling, eos: int | None = None
) -> Generation:
    tokenizer = runner.served.tokenizer
    assert tokenizer is not None
    work = Generation([tokenizer.encode(p) for p in prompts], sampling, tokenizer, eos)
    while not work.done:
        runner.run([work])
    return work


def test_greedy_generation_follows_the_models_argmax_over_a_sliding_window(
    runner: ForwardRunner,
) -> None:
    prompt = "the cat sees"
    work = generate(runner, [prompt], Sampling(max_tokens=12, temperature=0))
    tokenizer = runner.served.tokenizer
    assert tokenizer is not None
    tokens = tokenizer.encode(prompt)
    with torch.no_grad():
        for _ in range(12):
            window = torch.tensor([tokens[-CONTEXT:]])
            tokens.append(int(runner.served.module(window)[0, -1].argmax()))
    assert work.items[0].text == tokenizer.decode(tokens[len(prompt) :])
    assert work.items[0].finish_reason == "length"


def test_the_window_never_exceeds_the_context(runner: ForwardRunner) -> None:
    work = generate(runner, ["the cat sees the mat."], Sampling(max_tokens=3, temperature=0))
    assert len(work.items[0].prompt) > CONTEXT
    assert [len(window) for window in work.windows(CONTEXT)] == []  # finished rows leave
    work.items[0].finish_reason = None
    assert [len(window) for window in work.windows(CONTEXT)] == [CONTEXT]


def test_the_same_seed_gives_the_same_text_and_another_seed_another(
    runner: ForwardRunner,
) -> None:
    texts = [
        generate(runner, ["a dog"], Sampling(max_tokens=24, seed=seed)).items[0].text
        for seed in (7, 7, 8)
    ]
    assert texts[0] == texts[1] != texts[2]


def test_a_tiny_top_p_keeps_only_the_most_likely_token(runner: ForwardRunner) -> None:
    greedy = generate(runner, ["a dog"], Sampling(max_tokens=10, temperature=0))
    nucleus = generate(runner, ["a dog"], Sampling(max_tokens=10, top_p=1e-9, seed=1))
    assert nucleus.items[0].text == greedy.items[0].text


def test_a_stop_sequence_ends_the_text_just_before_it(runner: ForwardRunner) -> None:
    full = generate(runner, ["my friend"], Sampling(max_tokens=12, temperature=0)).items[0].text
    stop = full[5:7]
    cut = full.index(stop)
    work = generate(runner, ["my friend"], Sampling(max_tokens=12, temperature=0, stop=(stop,)))
    assert (work.items[0].text, work.items[0].finish_reason) == (full[:cut], "stop")
    assert len(work.items[0].generated) == cut + len(stop)


def test_the_end_of_sequence_token_stops_without_being_text(runner: ForwardRunner) -> None:
    first = generate(runner, ["the model"], Sampling(max_tokens=1, temperature=0))
    eos = first.items[0].generated[0]
    work = generate(runner, ["the model"], Sampling(max_tokens=8, temperature=0), eos=eos)
    assert (work.items[0].text, work.items[0].finish_reason) == ("", "stop")


def test_each_prompt_of_a_request_finishes_on_its_own(runner: ForwardRunner) -> None:
    full = generate(runner, ["the cat"], Sampling(max_tokens=8, temperature=0)).items[0].text
    sampling = Sampling(max_tokens=8, temperature=0, stop=(full[1],))
    tokenizer = runner.served.tokenizer
    assert tokenizer is not None
    work = Generation([tokenizer.encode("the cat"), tokenizer.encode("a dog")], sampling, tokenizer)
    rows_per_step = []
    while not work.done:
        rows_per_step.append(work.rows)
        runner.run([work])
    assert work.items[0].finish_reason == "stop"
    assert rows_per_step[0] == 2 and rows_per_step[-1] == 1


def test_a_vanishing_temperature_is_greedy_not_an_overflow(runner: ForwardRunner) -> None:
    greedy = generate(runner, ["a dog"], Sampling(max_tokens=6, temperature=0))
    tiny = generate(runner, ["a dog"], Sampling(max_tokens=6, temperature=1e-300, seed=3))
    small = generate(runner, ["a dog"], Sampling(max_tokens=6, temperature=1e-5, seed=3))
    assert greedy.items[0].text == tiny.items[0].text == small.items[0].text
