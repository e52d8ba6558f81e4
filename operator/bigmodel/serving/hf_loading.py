"""Hugging Face-format causal LMs: where `--model-uri` points, and loading one as a ServedModel.

A model directory holds `config.json`, `*.safetensors` weights and tokenizer files.
`hf://org/name[@revision]` resolves through the local Hugging Face cache only (as with
`HF_HUB_OFFLINE=1`: `HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`),
typically a mounted volume: the server never downloads. Weights are read from safetensors
only (a pickle would run code), and a model's own Python code runs only with
`--trust-remote-code`. transformers is imported here, lazily: the server needs it only when
it serves such a model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bigmodel.serving.config import DEFAULT_PREFILL_CHUNK_TOKENS
from bigmodel.serving.kv_cache import CachedDecoder
from bigmodel.serving.loading import ModelLoadError
from bigmodel.serving.model import ServedModel

SCHEME = "hf://"


def is_hf_uri(uri: str) -> bool:
    """Whether `--model-uri` names a Hugging Face model (hf://, or a directory with config.json)."""
    return uri.startswith(SCHEME) or (Path(uri.removeprefix("file://")) / "config.json").is_file()


def resolve_hf(uri: str) -> Path:
    """The local directory of a Hugging Face model URI; ModelLoadError when it is not there."""
    if not uri.startswith(SCHEME):
        return Path(uri.removeprefix("file://"))
    repo_id, _, revision = uri.removeprefix(SCHEME).partition("@")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ModelLoadError(f"--model-uri {uri!r}: expected hf://org/name[@revision]")
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.constants import HF_HUB_CACHE
    except ImportError:
        raise ModelLoadError(_missing_llm_extra(uri)) from None
    try:
        found = snapshot_download(repo_id, revision=revision or None, local_files_only=True)
    except Exception as error:
        raise ModelLoadError(
            f"--model-uri {uri!r}: not in the local Hugging Face cache {HF_HUB_CACHE} "
            f"({type(error).__name__}); mount it there (HF_HUB_CACHE or HF_HOME), or give "
            "the model's directory"
        ) from None
    return Path(found)


def _missing_llm_extra(uri: str) -> str:
    return (
        f"--model-uri {uri!r}: serving a Hugging Face model needs transformers "
        "(pip install 'bigmodel-operator[llm]')"
    )


class LogitsOnly(nn.Module):
    """A transformers causal LM as the server's module contract: token ids -> logits."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Logits `[batch, length, vocab]` of `input_ids` `[batch, length]`."""
        logits: torch.Tensor = self.model(input_ids=input_ids, use_cache=False).logits
        return logits


class HFTokenizer:
    """A transformers tokenizer as the server's Tokenizer, with its chat template."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, with the model's start token where it uses one."""
        ids: list[int] = self._tokenizer.encode(text)
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """The text of `ids`, special tokens left out."""
        text: str = self._tokenizer.decode(list(ids), skip_special_tokens=True)
        return text

    def encode_chat(self, messages: Sequence[Mapping[str, str]]) -> list[int]:
        """Token ids of `messages` rendered by the chat template, ready for the answer."""
        if not self._tokenizer.chat_template:
            raise ValueError("the model's tokenizer has no chat template: use /v1/completions")
        text = self._tokenizer.apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=True
        )
        ids: list[int] = self._tokenizer.encode(text, add_special_tokens=False)
        return ids


def _first_id(value: Any) -> int | None:
    if isinstance(value, list):
        return int(value[0]) if value else None
    return None if value is None else int(value)


def load_hf(
    uri: str,
    *,
    trust_remote_code: bool = False,
    prefill_chunk_tokens: int = DEFAULT_PREFILL_CHUNK_TOKENS,
) -> ServedModel:
    """The Hugging Face model at `uri`: its module, tokenizer and a KV-cache decoder that
    prefills at most `prefill_chunk_tokens` prompt tokens per step."""
    path = resolve_hf(uri)
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"--model-uri {uri!r}: {path} has no config.json")
    if not any(path.glob("*.safetensors")):
        raise ModelLoadError(
            f"--model-uri {uri!r}: no *.safetensors weights in {path} (pickled weights are "
            "refused: they can run code; convert them to safetensors)"
        )
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError:
        raise ModelLoadError(_missing_llm_extra(uri)) from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(
            path, use_safetensors=True, trust_remote_code=trust_remote_code, dtype=torch.float32
        )
    except Exception as error:
        lines = str(error).strip().splitlines()
        hint = " (--trust-remote-code runs it)" if "trust_remote_code" in str(error) else ""
        raise ModelLoadError(
            f"--model-uri {uri!r}: transformers cannot load it: "
            f"{type(error).__name__}: {lines[0] if lines else ''}{hint}"
        ) from None
    try:
        decoder = CachedDecoder(model, prefill_chunk_tokens)
    except ValueError as error:  # attention the KV cache cannot mask
        raise ModelLoadError(f"--model-uri {uri!r}: {error}") from None
    config = model.config
    logits_size = model.get_output_embeddings().weight.shape[0]
    eos = _first_id(getattr(model.generation_config, "eos_token_id", None))
    return ServedModel(
        module=LogitsOnly(model),
        vocab_size=int(logits_size),
        context_length=int(getattr(config, "max_position_embeddings", 0) or 2048),
        tokenizer=HFTokenizer(tokenizer),
        eos_token_id=eos if eos is not None else _first_id(tokenizer.eos_token_id),
        source=str(path),
        decoder=decoder,
    )
