"""Open Inference Protocol v2 over HTTP, against the real application and a tiny model."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import torch
from aiohttp.test_utils import TestClient, TestServer

from bigmodel.serving.app import build_app
from bigmodel.serving.metrics import ServingMetrics
from bigmodel.serving.state import ServerState
from support.serving import (
    CONTEXT,
    MODEL,
    VOCABULARY,
    infer_body,
    make_config,
    serving,
    tiny_model,
    until,
)

INFER = f"/v2/models/{MODEL}/infer"


def reference_logits(rows: list[list[int]]) -> list[list[float]]:
    """The tiny model's own next-token logits for each row, computed directly."""
    module = tiny_model().module.eval()
    with torch.no_grad():
        return [module(torch.tensor([row]))[0, -1].tolist() for row in rows]


async def test_server_metadata_names_the_server_and_its_version() -> None:
    async with serving() as s:
        response = await s.client.get("/v2")
        body = await response.json()
    assert response.status == 200
    assert body["name"] == "bigmodel-serving" and body["version"]


async def test_health_is_live_and_ready_once_the_model_is_warm() -> None:
    async with serving() as s:
        live = await s.client.get("/v2/health/live")
        ready = await s.client.get("/v2/health/ready")
        model_ready = await s.client.get(f"/v2/models/{MODEL}/ready")
        assert await ready.json() == {"ready": True}
    assert (live.status, ready.status, model_ready.status) == (200, 200, 200)


async def test_before_the_model_is_ready_only_liveness_answers_200() -> None:
    state = ServerState(make_config(), ServingMetrics())
    async with TestClient(TestServer(build_app(state))) as client:
        live = await client.get("/v2/health/live")
        ready = await client.get("/v2/health/ready")
        infer = await client.post(INFER, json=infer_body([[1, 2]]))
        error = (await infer.json())["error"]
    assert (live.status, ready.status, infer.status) == (200, 503, 503)
    assert infer.headers["Retry-After"] == "1" and "still loading" in error


async def test_model_metadata_describes_the_tensors() -> None:
    async with serving() as s:
        body = await (await s.client.get(f"/v2/models/{MODEL}")).json()
    assert body["name"] == MODEL
    assert body["inputs"] == [{"name": "input_ids", "datatype": "INT64", "shape": [-1, -1]}]
    assert body["outputs"] == [
        {"name": "logits", "datatype": "FP32", "shape": [-1, len(VOCABULARY)]}
    ]
    assert body["parameters"]["context_length"] == CONTEXT


async def test_infer_returns_each_rows_next_token_logits() -> None:
    rows = [[1, 2, 3, 4], [5, 6, 7, 8]]
    async with serving() as s:
        response = await s.client.post(INFER, json=infer_body(rows, id="req-1"))
        body = await response.json()
    assert response.status == 200
    assert body["id"] == "req-1" and body["model_name"] == MODEL
    [output] = body["outputs"]
    assert (output["name"], output["datatype"]) == ("logits", "FP32")
    assert output["shape"] == [2, len(VOCABULARY)]
    got = torch.tensor(output["data"]).view(2, -1)
    assert torch.allclose(got, torch.tensor(reference_logits(rows)), atol=1e-5)


async def test_nested_data_is_read_like_flat_data() -> None:
    rows = [[1, 2, 3], [4, 5, 6]]
    nested = infer_body(rows)
    nested["inputs"][0]["data"] = rows
    async with serving() as s:
        flat_body = await (await s.client.post(INFER, json=infer_body(rows))).json()
        nested_body = await (await s.client.post(INFER, json=nested)).json()
    assert nested_body["outputs"] == flat_body["outputs"]


async def test_concurrent_requests_share_one_batch_and_each_gets_its_own_rows() -> None:
    rows = [[1, 2], [3, 4, 5], [6], [7, 8, 9, 10]]
    config = make_config("--max-batch-size", "4", "--max-queue-delay-ms", "10000")
    async with serving(config) as s:
        responses = await asyncio.gather(
            *(s.client.post(INFER, json=infer_body([r])) for r in rows)
        )
        bodies = [await response.json() for response in responses]
        metrics = await s.metrics()
    # All four waited for each other (the 10 s delay ends when the batch is full).
    assert metrics["bigmodel_serving_batch_size_count"] == 1
    assert metrics["bigmodel_serving_batch_size_sum"] == 4
    for body, expected in zip(bodies, reference_logits(rows), strict=True):
        assert torch.allclose(
            torch.tensor(body["outputs"][0]["data"]), torch.tensor(expected), atol=1e-5
        )


def _tensor(**changes: Any) -> dict[str, Any]:
    body = infer_body([[1, 2, 3]])
    body["inputs"][0].update(changes)
    return body


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ([1, 2], "body", "must be a JSON object"),
        ({}, "inputs", "is required"),
        ({"inputs": {}}, "inputs", "must be an array"),
        ({"inputs": []}, "inputs", "exactly one tensor"),
        ({"inputs": [1]}, "inputs[0]", "must be an object"),
        (_tensor(name="tokens"), "inputs[0].name", "must be 'input_ids'"),
        (_tensor(datatype="FP32"), "inputs[0].datatype", "must be 'INT64'"),
        (_tensor(datatype=None), "inputs[0].datatype", "is required"),
        (_tensor(shape=[3]), "inputs[0].shape", "[batch, length]"),
        (_tensor(shape=[1, 0]), "inputs[0].shape", "positive ints"),
        (_tensor(shape=[1, "3"]), "inputs[0].shape", "positive ints"),
        (_tensor(shape=[1, 4]), "inputs[0].data", "has 3 values, shape [1, 4] needs 4"),
        (_tensor(shape=[2, 3], data=[[1, 2, 3]]), "inputs[0].data", "has 1 rows"),
        (_tensor(shape=[2, 2], data=[[1, 2], [3]]), "inputs[0].data[1]", "array of 2"),
        (_tensor(data=[1, 2, 999]), "inputs[0].data[2]", "token id in [0, "),
        (_tensor(data=[1, -1, 2]), "inputs[0].data[1]", "token id"),
        (_tensor(data=[1, 2.5, 2]), "inputs[0].data[1]", "got 2.5"),
        (_tensor(data=[True, 1, 2]), "inputs[0].data[0]", "got true"),
        (_tensor(data="123"), "inputs[0].data", "must be an array"),
        (_tensor(shape=[1, CONTEXT + 1], data=[1] * (CONTEXT + 1)), "inputs[0].shape", "context"),
        (_tensor(shape=[33, 1], data=[1] * 33), "inputs[0].shape", "max batch size 32"),
        ({**infer_body([[1]]), "outputs": [{"name": "probs"}]}, "outputs[0].name", "'logits'"),
    ],
)
async def test_a_bad_infer_request_is_a_400_naming_the_field(
    body: Any, field: str, words: str
) -> None:
    async with serving() as s:
        response = await s.client.post(INFER, json=body)
        error = (await response.json())["error"]
    assert response.status == 400
    assert error.startswith(f"{field}: ") and words in error


async def test_a_body_that_is_not_json_is_a_400() -> None:
    async with serving() as s:
        response = await s.client.post(INFER, data=b"{not json")
        error = (await response.json())["error"]
    assert response.status == 400 and "not valid JSON" in error


async def test_an_unknown_model_is_a_404_naming_the_served_one() -> None:
    async with serving() as s:
        for path in ("/v2/models/gpt/infer", "/v2/models/gpt", "/v2/models/gpt/ready"):
            response = await s.client.request(
                "POST" if path.endswith("infer") else "GET", path, json=infer_body([[1]])
            )
            error = (await response.json())["error"]
            assert response.status == 404 and "'gpt'" in error and repr(MODEL) in error, path


async def test_a_wrong_method_is_a_405_with_allow() -> None:
    async with serving() as s:
        response = await s.client.get(INFER)
        body = await response.json()
    assert response.status == 405 and response.headers["Allow"] == "POST"
    assert "Method Not Allowed" in body["error"]


async def test_an_unknown_path_is_a_404_listing_the_endpoints() -> None:
    async with serving() as s:
        response = await s.client.get("/v3/anything")
        error = (await response.json())["error"]
    assert response.status == 404 and "/v2/models/{name}" in error


async def test_a_body_above_the_limit_is_a_413() -> None:
    async with serving(make_config("--max-body-bytes", "1024")) as s:
        response = await s.client.post(INFER, json=infer_body([[1] * 600]))
        error = (await response.json())["error"]
    assert response.status == 413 and "1024 bytes" in error


async def test_a_full_queue_is_a_503_with_retry_after() -> None:
    config = make_config("--max-batch-size", "1", "--max-queue-size", "1")
    async with serving(config) as s:
        release = await s.occupy_device()
        running = asyncio.ensure_future(s.client.post(INFER, json=infer_body([[1]])))
        assert s.state.batcher is not None
        batcher = s.state.batcher
        await until(lambda: batcher.running == 1)  # the first request is in a batch
        queued = asyncio.ensure_future(s.client.post(INFER, json=infer_body([[2]])))
        await until(lambda: batcher.queued == 1)
        refused = await s.client.post(INFER, json=infer_body([[3]]))
        body = await refused.json()
        release.set()
        statuses = [(await running).status, (await queued).status]
    assert refused.status == 503 and refused.headers["Retry-After"] == "1"
    assert "queue is full" in body["error"]
    assert statuses == [200, 200]
