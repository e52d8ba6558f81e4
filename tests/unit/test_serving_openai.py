"""OpenAI-compatible `/v1` over HTTP, against the real application and a tiny model."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import torch

from bigmodel.serving.forward import ForwardRunner
from bigmodel.serving.generation import Generation, Sampling
from support.serving import CONTEXT, MODEL, make_config, serving, tiny_model

COMPLETIONS = "/v1/completions"


def greedy(prompt: str, max_tokens: int) -> str:
    """The tiny model's greedy continuation, generated directly, one request alone."""
    served = tiny_model()
    served.module.eval()
    runner = ForwardRunner(served, torch.device("cpu"))
    assert served.tokenizer is not None
    work = Generation([served.tokenizer.encode(prompt)], Sampling(max_tokens, 0), served.tokenizer)
    while not work.done:
        runner.run([work])
    return work.items[0].text


def completion(prompt: Any = "the cat", **fields: Any) -> dict[str, Any]:
    return {"model": MODEL, "prompt": prompt, **fields}


async def test_models_lists_the_served_model() -> None:
    async with serving() as s:
        listed = await (await s.client.get("/v1/models")).json()
        one = await (await s.client.get(f"/v1/models/{MODEL}")).json()
    assert [model["id"] for model in listed["data"]] == [MODEL]
    assert one["id"] == MODEL and one["object"] == "model"


async def test_a_greedy_completion_is_the_models_argmax_continuation() -> None:
    async with serving() as s:
        response = await s.client.post(COMPLETIONS, json=completion(max_tokens=10, temperature=0))
        body = await response.json()
    assert response.status == 200
    assert body["object"] == "text_completion" and body["model"] == MODEL
    assert body["id"].startswith("cmpl-")
    [choice] = body["choices"]
    assert choice == {
        "text": greedy("the cat", 10),
        "index": 0,
        "logprobs": None,
        "finish_reason": "length",
    }
    assert body["usage"] == {"prompt_tokens": 7, "completion_tokens": 10, "total_tokens": 17}


async def test_a_list_of_prompts_gets_one_choice_each_in_order() -> None:
    async with serving() as s:
        body = await (
            await s.client.post(
                COMPLETIONS, json=completion(["a dog", "my friend"], max_tokens=4, temperature=0)
            )
        ).json()
    assert [c["index"] for c in body["choices"]] == [0, 1]
    assert [c["text"] for c in body["choices"]] == [greedy("a dog", 4), greedy("my friend", 4)]
    assert body["usage"]["prompt_tokens"] == len("a dog") + len("my friend")
    assert body["usage"]["completion_tokens"] == 8


async def test_a_stop_sequence_ends_the_choice_with_finish_reason_stop() -> None:
    full = greedy("the cat", 12)
    stop = full[4:6]
    async with serving() as s:
        body = await (
            await s.client.post(
                COMPLETIONS, json=completion(max_tokens=12, temperature=0, stop=[stop])
            )
        ).json()
    [choice] = body["choices"]
    assert (choice["text"], choice["finish_reason"]) == (full[: full.index(stop)], "stop")


async def test_a_seed_makes_sampling_repeatable() -> None:
    request = completion(max_tokens=16, temperature=1.0, seed=42)
    async with serving() as s:
        first = await (await s.client.post(COMPLETIONS, json=request)).json()
        again = await (await s.client.post(COMPLETIONS, json=request)).json()
    assert first["choices"][0]["text"] == again["choices"][0]["text"]


async def test_concurrent_completions_are_batched_step_by_step_without_changing_them() -> None:
    prompts = ["the cat", "a dog sees", "every node", "the operator"]
    lengths = [3, 9, 5, 7]
    config = make_config("--max-queue-delay-ms", "10000", "--max-batch-size", "4")
    async with serving(config) as s:
        responses = await asyncio.gather(*(
            s.client.post(COMPLETIONS, json=completion(p, max_tokens=n, temperature=0))
            for p, n in zip(prompts, lengths, strict=True)
        ))  # fmt: skip
        texts = [(await r.json())["choices"][0]["text"] for r in responses]
        metrics = await s.metrics()
    assert texts == [greedy(p, n) for p, n in zip(prompts, lengths, strict=True)]
    # One step per token of the longest; the first step held all four rows.
    assert metrics["bigmodel_serving_batch_size_count"] == max(lengths)
    assert metrics["bigmodel_serving_batch_size_sum"] == sum(lengths)


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"prompt": "the cat"}, "model", "is required"),
        (completion(None), "prompt", "must be a string or an array of strings"),
        (completion(42), "prompt", "got 42"),
        (completion([]), "prompt", "got []"),
        (completion(["the", 1]), "prompt", "array of strings"),
        (completion(""), "prompt", "must not be empty"),
        (completion("the cat!"), "prompt", "'!' at position 7 is not in the model's vocabulary"),
        (completion("a" * (CONTEXT + 1)), "prompt", f"above the context of {CONTEXT}"),
        (completion(["a"] * 33), "prompt", "above max batch size 32"),
        (completion(max_tokens=0), "max_tokens", "between 1 and 1024"),
        (completion(max_tokens=5000), "max_tokens", "between 1 and 1024"),
        (completion(max_tokens="8"), "max_tokens", "must be an integer"),
        (completion(max_tokens=2.0), "max_tokens", "must be an integer"),
        (completion(temperature=-1), "temperature", "between 0 and 2"),
        (completion(temperature="hot"), "temperature", "must be a number"),
        (completion(top_p=0), "top_p", "(0, 1]"),
        (completion(seed="x"), "seed", "must be an integer"),
        (completion(stop=["a", "b", "c", "d", "e"]), "stop", "up to 4"),
        (completion(stop=[""]), "stop", "non-empty"),
        (completion(stream="yes"), "stream", "must be a boolean"),
        (completion(stream_options={"include_usage": True}), "stream_options", "stream: true"),
        (completion(stream=True, stream_options={"x": 1}), "stream_options.x", "not a recogn"),
        (completion(n=2), "n", "only 1 is supported"),
        (completion(echo=True), "echo", "only false"),
        (completion(logprobs=5), "logprobs", "only null"),
        (completion(frequency_penalty=0.5), "frequency_penalty", "only 0"),
        (completion(temprature=0), "temprature", "not a recognized request argument"),
    ],
)
async def test_a_bad_completion_is_a_400_naming_the_param(
    body: dict[str, Any], param: str, words: str
) -> None:
    async with serving() as s:
        response = await s.client.post(COMPLETIONS, json=body)
        error = (await response.json())["error"]
    assert response.status == 400
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert words in error["message"], error["message"]


async def test_the_defaults_of_unimplemented_options_are_accepted() -> None:
    defaults = {"n": 1, "stream": False, "echo": False, "logprobs": None, "best_of": 1,
                "frequency_penalty": 0, "presence_penalty": 0.0, "logit_bias": {},
                "suffix": None}  # fmt: skip
    body = completion(max_tokens=2, user="u", **defaults)
    async with serving() as s:
        response = await s.client.post(COMPLETIONS, json=body)
    assert response.status == 200


async def test_an_unknown_model_is_a_404_in_openai_format() -> None:
    async with serving() as s:
        response = await s.client.post(COMPLETIONS, json={**completion(), "model": "gpt-4"})
        error = (await response.json())["error"]
        card = await s.client.get("/v1/models/gpt-4")
    assert response.status == 404 and card.status == 404
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert "'gpt-4'" in error["message"] and repr(MODEL) in error["message"]


async def test_malformed_json_wrong_method_and_large_bodies_answer_in_openai_format() -> None:
    async with serving(make_config("--max-body-bytes", "1024")) as s:
        malformed = await s.client.post(COMPLETIONS, data=b"{")
        method = await s.client.get(COMPLETIONS)
        large = await s.client.post(COMPLETIONS, json=completion("a" * 2000))
        errors = [(await r.json())["error"] for r in (malformed, method, large)]
    assert [malformed.status, method.status, large.status] == [400, 405, 413]
    assert "not valid JSON" in errors[0]["message"]
    assert [e["code"] for e in errors[1:]] == ["method_not_allowed", "request_too_large"]
    assert all(set(e) == {"message", "type", "param", "code"} for e in errors)
