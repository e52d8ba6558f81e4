"""An LLM BigModelService end to end in the sandbox: the torch runtime serving a Hugging
Face-format directory (a tiny random model built here) answers the official `openai`
client's streamed chat through the Service's address; TTFT and TPOT appear in the status and
the operator's metrics; a ttft-autoscaled service scales up under load and back down."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from bigmodel.api import Reason
from bigmodel.demo import load as clients
from kubesandbox.testing import wait_for
from support.harness import Cluster, Operator
from support.llm import LLM as MODEL
from support.llm import tiny_lm_dir
from support.services import Services, chat_spec

pytestmark = pytest.mark.integration


@pytest.fixture
def operator_env() -> dict[str, str]:
    """Telemetry (and autoscaling) rounds every second."""
    return {"BIGMODEL_TELEMETRY_INTERVAL": "1"}


def chat(**changes: Any) -> dict[str, Any]:
    """examples/chat-service.yaml's spec serving the tests' tiny model (random weights, a
    tokenizer trained here; its directory's parent stands in for the volume `models`)."""
    directory = tiny_lm_dir()
    model = {"name": MODEL, "uri": f"/models/{directory.name}"}
    return chat_spec(directory.parent, model=model, **changes)


def streamed_chat(address: str) -> tuple[str, Any]:
    """One streamed chat answer through the official client: (text, usage)."""
    client = openai.OpenAI(base_url=f"{address}/v1", api_key="unused", max_retries=0, timeout=60)
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Hello! How can I help you today?"}],
        max_tokens=16,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, chunks[-1].usage


def test_a_hugging_face_model_streams_chat_and_reports_ttft_and_tpot(
    operator: Operator, services: Services, cluster: Cluster
) -> None:
    spec = chat(replicas=1)
    del spec["autoscaling"]
    services.apply("chat", spec)
    services.wait("chat", "Ready", ready=1, timeout=180)
    address = services.address("chat")
    text, usage = streamed_chat(address)
    assert usage.completion_tokens >= 1
    assert isinstance(text, str)

    def tokens_measured() -> dict[str, Any] | None:
        streamed_chat(address)  # observations between two rounds of the operator
        telemetry = services.status("chat").get("telemetry") or {}
        tokens = telemetry.get("tokens") or {}
        return telemetry if tokens.get("timeToFirstTokenSeconds") else None

    telemetry = wait_for("TTFT in status.telemetry", tokens_measured, timeout=120)
    assert telemetry["tokens"]["percentile"] == 90
    assert telemetry["tokens"]["timeToFirstTokenSeconds"] > 0
    [replica] = telemetry["perNode"]
    assert replica["name"] == services.replicas("chat")[0]["metadata"]["name"]
    labels = {"namespace": cluster.ns, "kind": "BigModelService", "name": "chat"}

    def exported() -> dict[tuple[str, ...], float] | None:
        streamed_chat(address)
        found = operator.samples("bigmodel_time_to_first_token_seconds", **labels)
        per_replica = operator.samples("bigmodel_node_time_per_output_token_seconds", **labels)
        return found if found and per_replica else None

    assert list(wait_for("TTFT and TPOT in /metrics", exported, timeout=120)) == [("0.9",)]


def test_a_ttft_autoscaled_service_scales_up_under_load_and_back_down(
    operator: Operator, services: Services, cluster: Cluster
) -> None:
    # A target any loaded replica exceeds: the test is about the signal's path (histogram,
    # percentile, autoscaler, Deployment), not about this machine's speed.
    autoscaling = {
        "minReplicas": 1,
        "maxReplicas": 2,
        "metric": "ttft",
        "percentile": 90,
        "target": 0.001,
        "scaleDownStabilizationSeconds": 5,
    }
    services.apply("busy-chat", chat(autoscaling=autoscaling))
    services.wait("busy-chat", "Ready", ready=1, timeout=180)
    load = clients.Load(services.address("busy-chat"), MODEL, clients=6, tokens=16, chat=True)
    with load.running():
        services.wait("busy-chat", "Ready", ready=2, timeout=180)
        status = services.status("busy-chat")
        assert status["autoscaling"]["metric"] == "ttft"
        assert status["autoscaling"]["percentile"] == 90
    assert load.errors == []
    services.wait("busy-chat", "Ready", ready=1, timeout=180)
    events = [(e["reason"], e["message"]) for e in cluster.event_list("busy-chat")]
    up = [m for r, m in events if r == Reason.SCALED_UP]
    down = [m for r, m in events if r == Reason.SCALED_DOWN]
    assert up and up[0].startswith("1 -> 2: p90 TTFT ")
    assert "> target 0.001s" in up[0]
    assert down and down[-1].startswith("2 -> 1: p90 TTFT 0s < target 0.001s")
