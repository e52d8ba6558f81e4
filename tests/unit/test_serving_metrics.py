"""`/metrics`: the names the operator reads, what each counts, and bounded labels."""

from __future__ import annotations

import asyncio
import re

import pytest

from support.llm import LLM, llm_config
from support.serving import MODEL, infer_body, make_config, serving, until

INFER = f"/v2/models/{MODEL}/infer"
OPERATOR_CONTRACT = (
    "bigmodel_serving_request_duration_seconds_sum{endpoint=infer}",
    "bigmodel_serving_request_duration_seconds_count{endpoint=completions}",
    "bigmodel_serving_requests_running",
    "bigmodel_serving_requests_waiting",
    "bigmodel_serving_requests_total{code=200,endpoint=infer}",
    "bigmodel_serving_batch_size_count",
    "bigmodel_serving_batch_seconds_count",
    "bigmodel_serving_queue_seconds_count",
    "bigmodel_serving_rejections_total{reason=queue_full}",
    "bigmodel_serving_rejections_total{reason=draining}",
    "bigmodel_serving_rejections_total{reason=too_large}",
    "bigmodel_serving_rejections_total{reason=invalid}",
    "bigmodel_serving_model_loaded",
)


async def test_every_series_the_operator_reads_exists_before_any_request() -> None:
    async with serving() as s:
        response = await s.client.get("/metrics")
        metrics = await s.metrics()
    assert response.content_type == "text/plain"
    for name in OPERATOR_CONTRACT:
        assert name in metrics, name
    assert metrics["bigmodel_serving_model_loaded"] == 1


async def test_a_successful_request_is_timed_and_counted_with_its_batch() -> None:
    async with serving() as s:
        await s.client.post(INFER, json=infer_body([[1, 2], [3, 4], [5, 6]]))
        metrics = await s.metrics()
    assert metrics["bigmodel_serving_requests_total{code=200,endpoint=infer}"] == 1
    assert metrics["bigmodel_serving_request_duration_seconds_count{endpoint=infer}"] == 1
    assert metrics["bigmodel_serving_request_duration_seconds_sum{endpoint=infer}"] > 0
    assert metrics["bigmodel_serving_batch_size_sum"] == 3
    assert metrics["bigmodel_serving_batch_seconds_count"] == 1
    assert metrics["bigmodel_serving_queue_seconds_count"] == 1


async def test_a_refused_request_is_counted_by_code_and_reason_but_not_timed() -> None:
    async with serving() as s:
        await s.client.post(INFER, json={"inputs": []})
        await s.client.post("/v1/completions", json={"model": MODEL, "prompt": 3})
        metrics = await s.metrics()
    assert metrics["bigmodel_serving_requests_total{code=400,endpoint=infer}"] == 1
    assert metrics["bigmodel_serving_requests_total{code=400,endpoint=completions}"] == 1
    assert metrics["bigmodel_serving_rejections_total{reason=invalid}"] == 2
    assert metrics["bigmodel_serving_request_duration_seconds_count{endpoint=infer}"] == 0


async def test_running_and_waiting_count_requests_in_flight() -> None:
    config = make_config("--max-batch-size", "1", "--max-queue-size", "1")
    async with serving(config) as s:
        release = await s.occupy_device()
        assert s.state.batcher is not None
        batcher = s.state.batcher
        first = asyncio.ensure_future(s.client.post(INFER, json=infer_body([[1]])))
        await until(lambda: batcher.running == 1)
        second = asyncio.ensure_future(s.client.post(INFER, json=infer_body([[2]])))
        await until(lambda: batcher.queued == 1)
        await s.client.post(INFER, json=infer_body([[3]]))  # the queue is full
        during = await s.metrics()
        release.set()
        await asyncio.gather(first, second)
        after = await s.metrics()
    assert during["bigmodel_serving_requests_running"] == 1
    assert during["bigmodel_serving_requests_waiting"] == 1
    assert during["bigmodel_serving_rejections_total{reason=queue_full}"] == 1
    assert during["bigmodel_serving_requests_total{code=503,endpoint=infer}"] == 1
    assert after["bigmodel_serving_requests_running"] == 0
    assert after["bigmodel_serving_requests_waiting"] == 0


async def test_labels_stay_bounded_whatever_the_paths_and_models_asked() -> None:
    async with serving() as s:
        for path in ("/v3/x", "/v2/models/other/infer", "/v2/models/a%20b/infer", "/admin"):
            await s.client.post(path, json={})
        metrics = await s.metrics()
    endpoints = {value for key in metrics for value in re.findall(r"endpoint=([^,}]*)", key)}
    assert endpoints == {"infer", "completions", "chat"}
    assert metrics["bigmodel_serving_rejections_total{reason=not_found}"] == 4


async def test_without_request_metrics_nothing_is_recorded_but_the_model_state() -> None:
    async with serving(make_config("--no-request-metrics")) as s:
        await s.client.post(INFER, json=infer_body([[1, 2]]))
        await s.client.post(INFER, json={})
        metrics = await s.metrics()
    assert metrics["bigmodel_serving_model_loaded"] == 1
    assert metrics["bigmodel_serving_requests_total{code=200,endpoint=infer}"] == 0
    assert metrics["bigmodel_serving_batch_size_count"] == 0
    assert metrics["bigmodel_serving_rejections_total{reason=invalid}"] == 0


async def test_a_generation_records_its_tokens_and_token_times_as_vllm_does() -> None:
    pytest.importorskip("transformers", reason="needs the llm extra: pip install -e '.[llm]'")
    request = {"model": LLM, "messages": [{"role": "user", "content": "Hello"}],
               "max_tokens": 6, "temperature": 0}  # fmt: skip
    async with serving(llm_config()) as s:
        body = await (await s.client.post("/v1/chat/completions", json=request)).json()
        metrics = await s.metrics()
    usage = body["usage"]
    assert metrics["bigmodel_serving_prompt_tokens_total"] == usage["prompt_tokens"]
    assert metrics["bigmodel_serving_generation_tokens_total"] == usage["completion_tokens"]
    assert metrics["bigmodel_serving_time_to_first_token_seconds_count"] == 1
    ttft = metrics["bigmodel_serving_time_to_first_token_seconds_sum"]
    duration = metrics["bigmodel_serving_request_duration_seconds_sum{endpoint=chat}"]
    assert 0 < ttft <= duration
    tpot_count = metrics["bigmodel_serving_time_per_output_token_seconds_count"]
    assert tpot_count == (1 if usage["completion_tokens"] >= 2 else 0)


async def test_token_series_exist_at_zero_from_the_first_scrape() -> None:
    async with serving() as s:
        metrics = await s.metrics()
    names = (
        "prompt_tokens_total",
        "generation_tokens_total",
        "time_to_first_token_seconds_count",
        "time_per_output_token_seconds_count",
    )
    for name in names:
        assert metrics[f"bigmodel_serving_{name}"] == 0
