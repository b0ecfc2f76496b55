"""The reward-model loader (unifiedreward.modeling) on tiny offline checkpoints."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import logging
from pathlib import Path

import pytest
import torch

from unifiedreward.errors import ModelLoadError, UnifiedRewardError
from unifiedreward.modeling import SUPPORTED_MODEL_TYPES, load_reward_model, model_family, resolve_dtype
from unifiedreward.testing.tiny_models import TINY_ARCHITECTURES, build_tiny_model, save_tiny_model

pytestmark = pytest.mark.smoke

FAMILY = {"qwen2_5_vl": "qwen", "qwen2_vl": "qwen", "qwen3_vl": "qwen", "llava_onevision": "llava"}
SAMPLE = "Which image is better? Image 1 is better. <|im_start|>héllo 🎉"


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> dict[str, Path]:
    """The four tiny models saved once per session (seed 7)."""
    root = tmp_path_factory.mktemp("tiny_checkpoints")
    return {arch: save_tiny_model(arch, root / arch, seed=7) for arch in TINY_ARCHITECTURES}


@pytest.mark.parametrize("arch", TINY_ARCHITECTURES)
def test_load_round_trip(arch, tiny_checkpoints, caplog):
    path = tiny_checkpoints[arch]
    with caplog.at_level(logging.INFO, logger="unifiedreward.modeling"):
        model, processor = load_reward_model(path)

    # weights: identical to a fresh build with the same seed
    reference = build_tiny_model(arch, seed=7)
    expected = reference.state_dict()
    loaded = model.state_dict()
    assert loaded.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(loaded[key], value), key
    assert type(model) is type(reference)
    assert not model.training
    assert model.dtype == torch.float32  # "auto" keeps the saved dtype
    assert model.device.type == "cpu"
    assert model_family(model) == FAMILY[arch]
    assert model.generation_config.eos_token_id == reference.generation_config.eos_token_id
    assert model.generation_config.pad_token_id == reference.generation_config.pad_token_id

    # processor: same tokenization, same chat template, same media geometry
    from unifiedreward.testing.tiny_models import build_tiny_processor

    built = build_tiny_processor(arch)
    assert type(processor) is type(built)
    assert processor.tokenizer(SAMPLE).input_ids == built.tokenizer(SAMPLE).input_ids
    assert processor.tokenizer.get_vocab() == built.tokenizer.get_vocab()
    assert processor.chat_template == built.chat_template
    assert processor.image_token == built.image_token
    assert processor.video_token == built.video_token
    for attr in ("patch_size", "merge_size", "size", "image_grid_pinpoints"):
        assert getattr(processor.image_processor, attr, None) == getattr(built.image_processor, attr, None), attr
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]}]
    assert processor.apply_chat_template(messages, tokenize=False) == built.apply_chat_template(
        messages, tokenize=False
    )

    # the log line says what was loaded
    record = next(r for r in caplog.records if r.name == "unifiedreward.modeling")
    message = record.getMessage()
    assert f"model_type={arch}" in message
    assert "dtype=torch.float32" in message
    assert "device=cpu" in message
    assert f"{sum(p.numel() for p in model.parameters()):,} parameters" in message


@pytest.mark.parametrize("dtype", ["bfloat16", torch.bfloat16])
def test_load_bfloat16(dtype, tiny_checkpoints):
    model, _ = load_reward_model(tiny_checkpoints["qwen2_5_vl"], dtype=dtype)
    assert model.dtype == torch.bfloat16
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())


def test_load_float16_llava(tiny_checkpoints):
    model, _ = load_reward_model(str(tiny_checkpoints["llava_onevision"]), dtype="float16")
    assert model.dtype == torch.float16


@pytest.mark.parametrize("bad", ["bf16", "float64x", "int8", torch.int32, 16, None])
def test_bad_dtype(bad, tiny_checkpoints):
    with pytest.raises(ValueError, match="dtype"):
        load_reward_model(tiny_checkpoints["qwen2_vl"], dtype=bad)


def test_resolve_dtype():
    assert resolve_dtype("auto") == "auto"
    assert resolve_dtype("float32") is torch.float32
    assert resolve_dtype("float16") is torch.float16
    assert resolve_dtype(torch.bfloat16) is torch.bfloat16


def test_nonexistent_path(tmp_path):
    missing = tmp_path / "does" / "not" / "exist"
    with pytest.raises(ModelLoadError, match="does not exist") as info:
        load_reward_model(missing)
    assert str(missing) in str(info.value)
    assert isinstance(info.value, UnifiedRewardError)


def test_unknown_hub_id_offline():
    with pytest.raises(ModelLoadError, match="no-such-user/no-such-reward-model") as info:
        load_reward_model("no-such-user/no-such-reward-model", local_files_only=True)
    assert info.value.__cause__ is not None


def test_directory_without_config(tmp_path):
    (tmp_path / "README.md").write_text("not a model")
    with pytest.raises(ModelLoadError, match="config.json") as info:
        load_reward_model(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_config_without_model_type(tmp_path):
    (tmp_path / "config.json").write_text('{"hidden_size": 8}')
    with pytest.raises(ModelLoadError, match="model_type"):
        load_reward_model(tmp_path)


@pytest.mark.parametrize("text_only", ["qwen2", "llama"])
def test_unsupported_architecture(text_only, tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    kwargs = {
        "vocab_size": 64,
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "bos_token_id": None,
    }
    if text_only == "qwen2":
        Qwen2ForCausalLM(Qwen2Config(**kwargs)).save_pretrained(tmp_path)
    else:
        LlamaForCausalLM(LlamaConfig(**kwargs)).save_pretrained(tmp_path)
    with pytest.raises(ModelLoadError) as info:
        load_reward_model(tmp_path)
    message = str(info.value)
    assert repr(text_only) in message
    assert str(tmp_path) in message
    for supported in ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "llava_onevision"):
        assert supported in message


def test_original_llava_checkpoint_gets_a_hint(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "llava_qwen", "architectures": ["LlavaQwenForCausalLM"]}')
    with pytest.raises(ModelLoadError, match="llava_onevision"):
        load_reward_model(tmp_path)


def test_missing_weights(tiny_checkpoints, tmp_path):
    import shutil

    target = tmp_path / "no_weights"
    shutil.copytree(tiny_checkpoints["qwen2_vl"], target)
    (target / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="weights") as info:
        load_reward_model(target)
    assert info.value.__cause__ is not None


def test_trust_remote_code_off_by_default(tiny_checkpoints, monkeypatch):
    import transformers

    calls: dict[str, list[dict]] = {"config": [], "model": [], "processor": []}
    originals = {
        "config": transformers.AutoConfig.from_pretrained,
        "model": transformers.AutoModelForImageTextToText.from_pretrained,
        "processor": transformers.AutoProcessor.from_pretrained,
    }

    def recorder(kind):
        def record(name, **kwargs):
            calls[kind].append(kwargs)
            return originals[kind](name, **kwargs)

        return record

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", recorder("config"))
    monkeypatch.setattr(transformers.AutoModelForImageTextToText, "from_pretrained", recorder("model"))
    monkeypatch.setattr(transformers.AutoProcessor, "from_pretrained", recorder("processor"))

    load_reward_model(tiny_checkpoints["qwen3_vl"])
    for kind, recorded in calls.items():  # (AutoProcessor itself calls AutoConfig again, with the same flag)
        assert recorded, kind
        assert all(c.get("trust_remote_code") is False for c in recorded), kind
    assert len(calls["model"]) == 1
    model_kwargs = calls["model"][0]
    assert model_kwargs["dtype"] == "auto"
    assert "device_map" not in model_kwargs and "revision" not in model_kwargs

    for recorded in calls.values():
        recorded.clear()
    load_reward_model(
        tiny_checkpoints["qwen3_vl"],
        trust_remote_code=True,
        dtype="float32",
        attn_implementation="eager",
        local_files_only=True,
        device_map="cpu",
    )
    assert all(c.get("trust_remote_code") is True for recorded in calls.values() for c in recorded)
    model_kwargs = calls["model"][0]
    assert model_kwargs["dtype"] is torch.float32
    assert model_kwargs["attn_implementation"] == "eager"
    assert model_kwargs["local_files_only"] is True
    assert model_kwargs["device_map"] == "cpu"


def test_model_family():
    from transformers import LlavaOnevisionConfig, Qwen2_5_VLConfig, Qwen3VLConfig

    assert model_family(Qwen2_5_VLConfig()) == "qwen"
    assert model_family(Qwen3VLConfig()) == "qwen"
    assert model_family(LlavaOnevisionConfig()) == "llava"
    assert model_family("qwen2_vl") == "qwen"
    assert model_family({"model_type": "llava_onevision"}) == "llava"
    with pytest.raises(ModelLoadError, match="qwen2"):
        model_family("qwen2")


def test_supported_model_types_exist_in_transformers():
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    assert set(FAMILY.items()) <= set(SUPPORTED_MODEL_TYPES.items())
    for model_type in SUPPORTED_MODEL_TYPES:
        assert model_type in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES, model_type
