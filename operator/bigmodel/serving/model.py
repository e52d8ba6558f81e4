"""What the server serves: a causal LM module with its sizes and, optionally, a tokenizer.

A `--model-factory` returns a `ServedModel`; the example trainer's checkpoints become one
too. The module maps INT64 token ids `[batch, length]` to logits `[batch, length, vocab]`
and must be causal (position t sees tokens <= t): the server right-pads rows of different
lengths into one batch and reads each row's logits at its own last position.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from torch import nn

from bigmodel.serving.kv_cache import CachedDecoder


class Tokenizer(Protocol):
    """Text <-> token ids, needed by `/v1/completions` (not by `/v2` inference)."""

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`; ValueError with a readable message when it cannot."""
        ...

    def decode(self, ids: Sequence[int]) -> str:
        """The text of `ids`."""
        ...


@runtime_checkable
class ChatTokenizer(Tokenizer, Protocol):
    """A tokenizer that also renders chat messages (`/v1/chat/completions`)."""

    def encode_chat(self, messages: Sequence[Mapping[str, str]]) -> list[int]:
        """Token ids of `messages` (`role`, `content`) followed by the answer's header;
        ValueError with a readable message when it cannot (no chat template)."""
        ...


@dataclass(frozen=True)
class ServedModel:
    """A model ready to move to its device: the module, its vocabulary and context sizes."""

    module: nn.Module
    vocab_size: int
    context_length: int
    tokenizer: Tokenizer | None = None
    eos_token_id: int | None = None
    """Generation stops at this token (not part of the text); None: only at max_tokens/stop."""
    source: str = ""
    """Where it came from (a checkpoint path, a factory), for logs and model metadata."""
    decoder: CachedDecoder | None = None
    """Generates with a key/value cache (Hugging Face models); None: each step runs the
    whole window through `module`."""

    def __post_init__(self) -> None:
        if not isinstance(self.module, nn.Module):
            raise TypeError(f"module must be a torch.nn.Module, got {type(self.module).__name__}")
        for name in ("vocab_size", "context_length"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")


class CharTokenizer:
    """One token per character of a fixed vocabulary (the example trainer's)."""

    def __init__(self, vocabulary: Sequence[str]) -> None:
        self.vocabulary = list(vocabulary)
        self._index = {char: i for i, char in enumerate(self.vocabulary)}

    def encode(self, text: str) -> list[int]:
        """Ids of the characters; an unknown one raises ValueError naming it."""
        try:
            return [self._index[char] for char in text]
        except KeyError as missing:
            position = text.index(missing.args[0])
            raise ValueError(
                f"character {missing.args[0]!r} at position {position} is not in the "
                f"model's vocabulary {''.join(self.vocabulary)!r}"
            ) from None

    def decode(self, ids: Sequence[int]) -> str:
        """The characters of `ids`."""
        return "".join(self.vocabulary[i] for i in ids)
