"""The model server of BigModelService's `torch` runtime: `python -m bigmodel.serving`.

Serves one torch model over HTTP with the Open Inference Protocol v2 and OpenAI-compatible
completions, dynamic and continuous batching, Prometheus metrics and a graceful drain. It
imports only the stdlib, torch, aiohttp, prometheus_client and `bigmodel.runtime`: the
server image carries nothing else. See docs/serving.md.
"""

from bigmodel.serving.model import CharTokenizer, ServedModel, Tokenizer

__all__ = ["CharTokenizer", "ServedModel", "Tokenizer"]
