"""Open Inference Protocol v2 (KServe/Triton REST): health, metadata and next-token inference.

The model has one input, `input_ids` (INT64 `[batch, length]`), and one output, `logits`
(FP32 `[batch, vocab]`: the next token's logits after each row). Tensor `data` is row-major,
flat or nested. Errors are `{"error": "..."}` with a message that names the field.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

import torch
from aiohttp import web

from bigmodel.serving.errors import RefusalReason, invalid, unavailable
from bigmodel.serving.forward import ModelWork
from bigmodel.serving.model import ServedModel
from bigmodel.serving.state import STATE, ServerState, read_json, run
from bigmodel.serving.validation import field, json_object, shown

INPUT_NAME = "input_ids"
OUTPUT_NAME = "logits"
SERVER_NAME = "bigmodel-serving"


def server_version() -> str:
    """The installed project's version."""
    try:
        return version("bigmodel-operator")
    except PackageNotFoundError:
        return "0+unknown"


class Inference(ModelWork):
    """One infer request's rows; `logits` holds `[batch, vocab]` (float32, CPU) once done."""

    def __init__(self, tokens: torch.Tensor) -> None:
        self.tokens = tokens
        self.logits: torch.Tensor | None = None

    @property
    def rows(self) -> int:
        """The request's batch size."""
        return int(self.tokens.shape[0])

    def windows(self, context_length: int) -> list[torch.Tensor]:
        """The rows as sent (already checked to fit the context)."""
        return list(self.tokens.unbind(0))

    def advance(self, logits: torch.Tensor) -> None:
        """Keep the logits; one step is all an inference takes."""
        self.logits = logits.float().cpu()
        self.done = True


def _flat_data(data: list[Any], batch: int, length: int, path: str) -> list[Any]:
    """Row-major values of `data`, given flat or nested as `[batch][length]`."""
    if not data or not isinstance(data[0], list):
        return data
    if len(data) != batch:
        raise invalid(path, f"has {len(data)} rows, shape says {batch}")
    flat: list[Any] = []
    for i, row in enumerate(data):
        if not isinstance(row, list) or len(row) != length:
            raise invalid(f"{path}[{i}]", f"must be an array of {length} token ids")
        flat.extend(row)
    return flat


def parse_tokens(body: Any, served: ServedModel, max_batch_size: int) -> torch.Tensor:
    """The INT64 `[batch, length]` token ids of an infer request, every field checked."""
    body = json_object(body)
    inputs = field(body, "inputs", "array", "inputs")
    if len(inputs) != 1:
        raise invalid("inputs", f"must hold exactly one tensor ({INPUT_NAME}), got {len(inputs)}")
    tensor = inputs[0]
    if not isinstance(tensor, dict):
        raise invalid("inputs[0]", f"must be an object, got {shown(tensor)}")
    name = field(tensor, "name", "string", "inputs[0].name")
    if name != INPUT_NAME:
        raise invalid("inputs[0].name", f"must be {INPUT_NAME!r}, got {name!r}")
    datatype = field(tensor, "datatype", "string", "inputs[0].datatype")
    if datatype != "INT64":
        raise invalid("inputs[0].datatype", f"must be 'INT64' (token ids), got {datatype!r}")
    shape = field(tensor, "shape", "array", "inputs[0].shape")
    if len(shape) != 2 or not all(type(n) is int and n >= 1 for n in shape):
        raise invalid("inputs[0].shape", f"must be [batch, length] of positive ints, got {shape}")
    batch, length = shape
    if batch > max_batch_size:
        raise invalid("inputs[0].shape", f"batch {batch} is above max batch size {max_batch_size}")
    if length > served.context_length:
        raise invalid(
            "inputs[0].shape", f"length {length} is above the context of {served.context_length}"
        )
    data = _flat_data(
        field(tensor, "data", "array", "inputs[0].data"), batch, length, "inputs[0].data"
    )
    if len(data) != batch * length:
        raise invalid(
            "inputs[0].data", f"has {len(data)} values, shape {shape} needs {batch * length}"
        )
    vocab = served.vocab_size
    if not all(type(token) is int for token in data) or min(data) < 0 or max(data) >= vocab:
        index, token = next(
            (i, t) for i, t in enumerate(data) if type(t) is not int or not 0 <= t < vocab
        )
        raise invalid(
            f"inputs[0].data[{index}]", f"must be a token id in [0, {vocab}), got {shown(token)}"
        )
    outputs = field(body, "outputs", "array", "outputs", default=[])
    for i, output in enumerate(outputs):
        if not isinstance(output, dict) or output.get("name") != OUTPUT_NAME:
            raise invalid(f"outputs[{i}].name", f"the only output is {OUTPUT_NAME!r}")
    return torch.tensor(data, dtype=torch.long).view(batch, length)


def model_metadata(state: ServerState, served: ServedModel) -> dict[str, Any]:
    """The model's metadata: its input and output tensors."""
    return {
        "name": state.config.model_name,
        "versions": ["1"],
        "platform": "pytorch",
        "inputs": [{"name": INPUT_NAME, "datatype": "INT64", "shape": [-1, -1]}],
        "outputs": [{"name": OUTPUT_NAME, "datatype": "FP32", "shape": [-1, served.vocab_size]}],
        "parameters": {
            "context_length": served.context_length,
            "max_batch_size": state.config.max_batch_size,
        },
    }


async def server_metadata(request: web.Request) -> web.Response:
    """`GET /v2`."""
    return web.json_response({"name": SERVER_NAME, "version": server_version(), "extensions": []})


async def live(request: web.Request) -> web.Response:
    """`GET /v2/health/live`: the process serves HTTP (also while loading and draining)."""
    return web.json_response({"live": True})


async def ready(request: web.Request) -> web.Response:
    """`GET /v2/health/ready`: 200 once loaded and warmed up, 503 before and while draining."""
    is_ready = request.app[STATE].ready
    return web.json_response({"ready": is_ready}, status=200 if is_ready else 503)


async def model(request: web.Request) -> web.Response:
    """`GET /v2/models/{name}`: metadata."""
    state = request.app[STATE]
    name = request.match_info["name"]
    if name != state.config.model_name:
        raise state.not_found(name, "name")
    if state.served is None:
        raise unavailable(RefusalReason.NOT_READY, "the model is still loading; retry later")
    return web.json_response(model_metadata(state, state.served))


async def model_ready(request: web.Request) -> web.Response:
    """`GET /v2/models/{name}/ready`."""
    state = request.app[STATE]
    name = request.match_info["name"]
    if name != state.config.model_name:
        raise state.not_found(name, "name")
    return web.json_response(
        {"name": name, "ready": state.ready}, status=200 if state.ready else 503
    )


async def infer(request: web.Request) -> web.Response:
    """`POST /v2/models/{name}/infer`: next-token logits of each row."""
    state = request.app[STATE]
    served, batcher = state.admit(request.match_info["name"], "name")
    body = await read_json(request)
    work = Inference(parse_tokens(body, served, state.config.max_batch_size))
    await run(batcher, work)
    assert work.logits is not None
    answer: dict[str, Any] = {"model_name": state.config.model_name, "outputs": [{
        "name": OUTPUT_NAME, "datatype": "FP32", "shape": list(work.logits.shape),
        "data": work.logits.flatten().tolist(),
    }]}  # fmt: skip
    if isinstance(body.get("id"), str):
        answer["id"] = body["id"]
    return web.json_response(answer)


def add_routes(app: web.Application) -> None:
    """Register the protocol's routes."""
    app.router.add_get("/v2", server_metadata)
    app.router.add_get("/v2/health/live", live)
    app.router.add_get("/v2/health/ready", ready)
    app.router.add_get("/v2/models/{name}", model)
    app.router.add_get("/v2/models/{name}/ready", model_ready)
    app.router.add_post("/v2/models/{name}/infer", infer, name="infer")
