"""A small causal transformer language model (torch.nn only) and its offline corpus."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

_SUBJECTS = ("the cat", "a dog", "my friend", "the operator", "every node", "the model")
_VERBS = ("sees", "trains", "likes", "waits for", "measures", "follows", "finds")
_OBJECTS = ("the mat", "a ball", "the gradient", "each step", "the cluster", "a small bird")


def synthetic_corpus(sentences: int = 4000, seed: int = 0) -> str:
    """A deterministic text of simple sentences: learnable structure, nothing to download."""
    rng = random.Random(seed)
    return " ".join(
        f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}."
        for _ in range(sentences)
    )


class CharCorpus:
    """A text encoded as character ids, sampled into (input, next-character) batches."""

    def __init__(self, text: str) -> None:
        self.vocab = sorted(set(text))
        index = {char: i for i, char in enumerate(self.vocab)}
        self.ids = torch.tensor([index[char] for char in text], dtype=torch.long)

    def batch(self, batch_size: int, seq_len: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Random windows chosen by `seed` alone, so a resumed run sees the same data."""
        generator = torch.Generator().manual_seed(seed)
        starts = torch.randint(0, len(self.ids) - seq_len - 1, (batch_size,), generator=generator)
        windows = torch.stack([self.ids[s : s + seq_len + 1] for s in starts.tolist()])
        return windows[:, :-1], windows[:, 1:]


@dataclass(frozen=True)
class TinyLMConfig:
    """The sizes that rebuild a TinyLM; saved in checkpoints so a server can load one alone."""

    vocab: int
    d_model: int
    layers: int
    heads: int
    seq_len: int

    def as_dict(self) -> dict[str, int]:
        """Plain ints, loadable by `torch.load(weights_only=True)`."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TinyLMConfig:
        """The config saved by `as_dict`; a missing or non-positive size raises ValueError."""
        sizes: dict[str, int] = {}
        for name in ("vocab", "d_model", "layers", "heads", "seq_len"):
            value = values.get(name)
            if type(value) is not int or value < 1:
                raise ValueError(f"config.{name}: expected a positive integer, got {value!r}")
            sizes[name] = value
        if sizes["d_model"] % sizes["heads"]:
            raise ValueError(f"config.d_model {sizes['d_model']} is not divisible by heads")
        return cls(**sizes)

    def build(self) -> TinyLM:
        """A freshly initialised model of these sizes."""
        return TinyLM(self.vocab, self.d_model, self.layers, self.heads, self.seq_len)


class TinyLM(nn.Module):
    """Token + position embeddings, pre-norm transformer blocks with a causal mask, a head."""

    def __init__(self, vocab: int, d_model: int, layers: int, heads: int, seq_len: int) -> None:
        super().__init__()
        self.config = TinyLMConfig(vocab, d_model, layers, heads, seq_len)
        self.embed = nn.Embedding(vocab, d_model)
        self.position = nn.Embedding(seq_len, d_model)
        block = nn.TransformerEncoderLayer(
            d_model, heads, 4 * d_model, dropout=0.0, batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Next-token logits, shape (batch, seq, vocab)."""
        length = tokens.shape[1]
        positions = torch.arange(length, device=tokens.device)
        mask = nn.Transformer.generate_square_subsequent_mask(length, device=tokens.device)
        x = self.embed(tokens) + self.position(positions)
        logits: torch.Tensor = self.head(self.norm(self.blocks(x, mask=mask, is_causal=True)))
        return logits


def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-character cross-entropy."""
    loss: torch.Tensor = nn.functional.cross_entropy(
        logits.flatten(0, 1).float(), targets.flatten()
    )
    return loss
