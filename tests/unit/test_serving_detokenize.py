"""Incremental detokenization: the text decoded token by token with a short look-back is the
text of all the tokens at once, for a byte-level tokenizer that splits characters over
tokens and for a SentencePiece-style one that drops a leading space."""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bigmodel.serving.detokenize import REPLACEMENT, DecodeOffsets, new_text
from bigmodel.serving.hf_loading import HFTokenizer
from support.llm import tiny_lm_dir

pytest.importorskip("transformers", reason="needs the llm extra: pip install -e '.[llm]'")

TEXT = "Grüße aus Köln — 東京で会いましょう 🙂👍 naïve café, smörgåsbord."


@functools.cache
def byte_level() -> HFTokenizer:
    """A byte-level BPE tokenizer with few merges: most non-ASCII characters take 2-4 tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator([TEXT, "hello world, the operator"], trainer=trainer)
    return HFTokenizer(PreTrainedTokenizerFast(tokenizer_object=tokenizer))


@functools.cache
def metaspace() -> HFTokenizer:
    """The tiny model's tokenizer (SentencePiece's spaces: `▁word`)."""
    from transformers import AutoTokenizer

    return HFTokenizer(AutoTokenizer.from_pretrained(tiny_lm_dir()))


def streamed(tokenizer: HFTokenizer, tokens: list[int]) -> list[str]:
    """Each token's new text, the last one final (the row ends)."""
    offsets = DecodeOffsets()
    return [
        new_text(tokenizer, tokens[:n], offsets, final=n == len(tokens))
        for n in range(1, len(tokens) + 1)
    ]


def test_the_byte_level_tokenizer_splits_characters_over_tokens() -> None:
    tokenizer = byte_level()
    tokens = tokenizer.encode(TEXT)
    assert any(REPLACEMENT in tokenizer.decode([token]) for token in tokens)


@pytest.mark.parametrize(
    ("tokenizer", "text"),
    [(byte_level, TEXT), (metaspace, "The operator turns custom resources into jobs.")],
    ids=["byte-level", "metaspace"],
)
def test_text_decoded_token_by_token_is_the_whole_text(
    tokenizer: Callable[[], HFTokenizer], text: str
) -> None:
    tokens = tokenizer().encode(text)
    pieces = streamed(tokenizer(), tokens)
    assert "".join(pieces) == tokenizer().decode(tokens) == text
    assert all(REPLACEMENT not in piece for piece in pieces), "no half character goes out"


def test_half_a_character_waits_for_the_token_that_completes_it() -> None:
    tokenizer = byte_level()
    tokens = tokenizer.encode("🙂")
    assert len(tokens) > 1
    pieces = streamed(tokenizer, tokens)
    assert pieces[:-1] == [""] * (len(tokens) - 1)
    assert pieces[-1] == "🙂"


def test_a_row_that_ends_mid_character_gets_the_replacement_as_a_full_decode_does() -> None:
    tokenizer = byte_level()
    cut = tokenizer.encode("ok 🙂")[:-1]
    assert "".join(streamed(tokenizer, cut)) == tokenizer.decode(cut)


def test_the_spaces_between_words_survive_the_look_back() -> None:
    tokenizer = metaspace()
    text = "Hello model server"
    tokens = tokenizer.encode(text)
    alone = "".join(tokenizer.decode([token]) for token in tokens)
    assert alone != text, "decoded one by one, the tokens lose their spaces"
    assert "".join(streamed(tokenizer, tokens)) == text


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_token_sequence_decodes_to_its_whole_text(data: st.DataObject) -> None:
    tokenizer = byte_level()
    vocab = len(tokenizer._tokenizer)
    tokens = data.draw(st.lists(st.integers(0, vocab - 1), min_size=1, max_size=24))
    assert "".join(streamed(tokenizer, tokens)) == tokenizer.decode(tokens)
