"""A row's text as its tokens come: each token decodes only itself and a short look-back.

Decoding all of a row's tokens after each new one costs O(length) per token. Instead (as
Hugging Face's text-generation-inference does) two offsets are kept: `read`, the tokens
whose text is out, and `prefix`, where the window decoded last time began. Each token
decodes `tokens[prefix:read]` and `tokens[prefix:]`; what the second adds to the first is the
new text. The look-back from `prefix` gives the tokenizer the context a token's text depends
on: a SentencePiece-style tokenizer drops the space before the first word it decodes, and a
byte-level one needs the earlier bytes of a character split over tokens. New text ending in
U+FFFD (half a multi-byte character) waits for the next token, unless the row ends there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

REPLACEMENT = "\ufffd"
"""What a tokenizer decodes half a multi-byte character to."""


class Decoder(Protocol):
    """What decoding needs of a tokenizer."""

    def decode(self, ids: Sequence[int]) -> str:
        """The text of `ids`."""
        ...


@dataclass
class DecodeOffsets:
    """How far a row's tokens are decoded: `read` tokens are text, from a window at `prefix`."""

    prefix: int = 0
    read: int = 0


def new_text(
    tokenizer: Decoder, tokens: Sequence[int], offsets: DecodeOffsets, final: bool = False
) -> str:
    """The text `tokens` add after the first `offsets.read`, and the offsets moved past it;
    "" while it would end in half a character (all of it when `final`: the row ends)."""
    before = tokenizer.decode(tokens[offsets.prefix : offsets.read])
    after = tokenizer.decode(tokens[offsets.prefix :])
    if not final and (len(after) <= len(before) or after.endswith(REPLACEMENT)):
        return ""
    offsets.prefix, offsets.read = offsets.read, len(tokens)
    return after[len(before) :]
