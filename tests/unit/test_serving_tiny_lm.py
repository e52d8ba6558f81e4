"""The tiny model builder: a Hugging Face directory that transformers loads as it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from bigmodel.serving.tiny_lm import CHAT_TEMPLATE, build_tiny_lm, main
from support.llm import tiny_lm_dir

transformers = pytest.importorskip(
    "transformers", reason="needs the llm extra: pip install -e '.[llm]' (make venv does)"
)


def test_the_directory_holds_safetensors_weights_a_config_and_a_tokenizer() -> None:
    names = {path.name for path in tiny_lm_dir().iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names
    assert not any(name.endswith((".bin", ".pt")) for name in names)


def test_transformers_loads_it_as_a_llama_of_a_few_hundred_thousand_parameters() -> None:
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_lm_dir())
    parameters = sum(p.numel() for p in model.parameters())
    assert type(model).__name__ == "LlamaForCausalLM"
    assert 100_000 < parameters < 1_000_000


def test_every_token_decodes_to_valid_text() -> None:
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_lm_dir())
    assert all("\ufffd" not in tokenizer.decode([i]) for i in range(len(tokenizer)))


def test_text_of_the_training_alphabet_round_trips() -> None:
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_lm_dir())
    text = "Hello there, a model server answers.\nThe end"
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert tokenizer.decode(ids) == text


def test_the_chat_template_renders_roles_and_the_answer_header() -> None:
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_lm_dir())
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert tokenizer.chat_template == CHAT_TEMPLATE
    assert text == "<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\n"


def test_the_same_seed_gives_the_same_weights_and_another_seed_others(tmp_path: Path) -> None:
    first = build_tiny_lm(tmp_path / "a", seed=3).joinpath("model.safetensors").read_bytes()
    again = build_tiny_lm(tmp_path / "b", seed=3).joinpath("model.safetensors").read_bytes()
    other = build_tiny_lm(tmp_path / "c", seed=4).joinpath("model.safetensors").read_bytes()
    assert first == again != other


def test_the_command_writes_a_model_of_the_sizes_asked(tmp_path: Path) -> None:
    assert main([str(tmp_path / "m"), "--hidden-size", "32", "--layers", "1"]) == 0
    config = transformers.AutoConfig.from_pretrained(tmp_path / "m")
    assert (config.hidden_size, config.num_hidden_layers) == (32, 1)
