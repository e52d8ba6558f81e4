"""A tiny causal language model in Hugging Face format, made offline in seconds.

`build_tiny_lm(directory)` trains a BPE tokenizer on a few built-in sentences (its alphabet
is the text's own characters, so every token decodes to valid UTF-8), wraps it as a
`PreTrainedTokenizerFast` with a chat template, and saves a `LlamaForCausalLM` with random
weights (safetensors). The server loads the directory like any Hugging Face model: tests,
the demo and users without a model hub try the LLM runtime with it
(`python -m bigmodel.serving.tiny_lm DIR`). Its answers are random text, by design.

transformers and tokenizers are imported here only: the server needs them only when it
serves a Hugging Face model.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SENTENCES = (
    "The operator turns custom resources into training jobs and model services.",
    "A model server answers chat completions, one token after another, as a stream.",
    "Each node reports how long its last step took; the slowest node is a straggler.",
    "Continuous batching lets new requests join the running batch between decode steps.",
    "The key and value cache keeps the attention of earlier tokens, so a step is cheap.",
    "Time to first token and time per output token tell how fast a language model feels.",
    "Replicas scale up under load and back down when the queue is empty again.",
    "Hello! How can I help you today? Ask me anything about serving models: 0123456789.",
)
"""The tokenizer's training text: its characters are the tokenizer's whole alphabet."""
UNKNOWN, BEGIN, END = "<unk>", "<s>", "</s>"
SPACE = "\u2581"
"""How the Metaspace pre-tokenizer writes a space (as SentencePiece does)."""
ROLES = ("system", "user", "assistant")
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}"
    f"{END}\n{{% endfor %}}{{% if add_generation_prompt %}}<|assistant|>\n{{% endif %}}"
)
"""Each message as `<|role|>`, newline, content, end of sequence; then the answer's header."""


def _alphabet() -> list[str]:
    """The sentences' characters, spaces as the pre-tokenizer writes them, and the newline
    the chat template writes."""
    return sorted(set("".join(SENTENCES)) - {" "} | {SPACE, "\n"})


def _train_tokenizer(vocab_size: int) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token=UNKNOWN))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(SPACE)
    tokenizer.decoder = decoders.Metaspace(SPACE)
    role_markers = [f"<|{role}|>" for role in ROLES]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[UNKNOWN, BEGIN, END, *role_markers],
        initial_alphabet=_alphabet(),
        limit_alphabet=len(_alphabet()),
        show_progress=False,
    )
    tokenizer.train_from_iterator(SENTENCES, trainer=trainer)
    return tokenizer


def build_tiny_lm(
    directory: Path,
    *,
    seed: int = 0,
    hidden_size: int = 96,
    layers: int = 2,
    heads: int = 4,
    context_length: int = 512,
    vocab_size: int = 512,
) -> Path:
    """Write a random-weight Llama and its tokenizer to `directory`; returns `directory`.

    The defaults give a few hundred thousand parameters; larger sizes (e.g. hidden 256,
    8 layers: a few million) make a model whose forward costs something, for benchmarks.
    `vocab_size` is an upper bound: BPE stops when the sentences offer no more merges.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=_train_tokenizer(vocab_size),
        unk_token=UNKNOWN,
        bos_token=BEGIN,
        eos_token=END,
        pad_token=END,
        model_max_length=context_length,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(directory)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 4,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=context_length,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(directory, safe_serialization=True)
    return directory


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m bigmodel.serving.tiny_lm DIR`: write the tiny model there."""
    parser = argparse.ArgumentParser(
        prog="python -m bigmodel.serving.tiny_lm",
        description="Write a tiny random-weight causal LM in Hugging Face format (offline).",
    )
    parser.add_argument("directory", type=Path, help="where to write it (created if absent)")
    parser.add_argument("--seed", type=int, default=0, help="weights' random seed (default: 0)")
    parser.add_argument("--hidden-size", type=int, default=96, help="default: 96")
    parser.add_argument("--layers", type=int, default=2, help="default: 2")
    parser.add_argument("--heads", type=int, default=4, help="default: 4")
    parser.add_argument("--context-length", type=int, default=512, help="default: 512")
    args = parser.parse_args(argv)
    path = build_tiny_lm(
        args.directory,
        seed=args.seed,
        hidden_size=args.hidden_size,
        layers=args.layers,
        heads=args.heads,
        context_length=args.context_length,
    )
    print(f"wrote {path}: serve it with python -m bigmodel.serving --model-uri {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
