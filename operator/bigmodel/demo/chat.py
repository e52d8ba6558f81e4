"""The demo's last part: a chat model in Hugging Face format served by
`examples/chat-service.yaml` (a tiny one with random weights, built here offline: its answers
are random words, by design), one answer streamed as the server sends it, and the time to
first token and time per output token the operator measured."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bigmodel.demo.kubectl import EXAMPLES, DemoError, Kubectl, wait
from bigmodel.demo.load import chat, stream_chat
from bigmodel.demo.service import yaml_documents

QUESTION = "Hello! How can I help you today?"


def _milliseconds(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.3g}ms"


def converse(kubectl: Kubectl, state: Path) -> None:
    """Build the model, serve it, stream one answer, show TTFT and TPOT."""
    # transformers (and its hub client) are loaded for this part only
    from huggingface_hub.utils import disable_progress_bars

    from bigmodel.serving.tiny_lm import build_tiny_lm

    disable_progress_bars()  # the model's few shards are written in an instant

    service = next(
        d for d in yaml_documents(EXAMPLES / "chat-service.yaml") if d["kind"] == "BigModelService"
    )
    spec, name = service["spec"], service["metadata"]["name"]
    model = spec["model"]["name"]
    models = state / "models"
    build_tiny_lm(models / model)
    spec["volumes"] = [{"name": "models", "hostPath": {"path": str(models)}}]
    kubectl("apply", "-f", "-", input=json.dumps(service))
    print(
        f"\napplied examples/chat-service.yaml: {name} serves {model}, a tiny Hugging Face-format"
        " model with random weights built offline (autoscaled on p90 time to first token)",
        flush=True,
    )
    wait(f"{name} Ready", lambda: kubectl.status("bms", name).get("phase") == "Ready", 300)
    front = json.loads(kubectl("get", "service", name, "-o", "json"))["spec"]
    address = f"http://{front['clusterIP']}:{front['ports'][0]['port']}"
    print(f"\nuser: {QUESTION}\n{model} (streamed): ", end="", flush=True)
    for piece in stream_chat(address, model, QUESTION):
        print(piece, end="", flush=True)
    print(flush=True)

    def measured() -> dict[str, Any] | None:
        code, answer = chat(address, model, QUESTION)  # more answers until a round saw them
        if code != 200:
            raise DemoError(f"a chat completion from {address} answered {code}: {answer}")
        telemetry = kubectl.status("bms", name).get("telemetry") or {}
        return telemetry.get("tokens")

    tokens = wait("TTFT in the service's status", measured, 60)
    percentile = f"p{tokens['percentile']:g}"
    print(
        f"{name}: {percentile} time to first token"
        f" {_milliseconds(tokens.get('timeToFirstTokenSeconds'))}, time per output token"
        f" {_milliseconds(tokens.get('timePerOutputTokenSeconds'))}"
        " (status.telemetry.tokens, bigmodel_time_to_first_token_seconds)",
        flush=True,
    )
