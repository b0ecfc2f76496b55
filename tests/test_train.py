"""Training entry point (unifiedreward.train), launcher (train.sh) and DeepSpeed configs, on tiny models and CPU."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import TrainerCallback

from unifiedreward.data.sft import BadDataError
from unifiedreward.train import (
    DataArguments,
    EpochLengthGroupedSampler,
    ModelArguments,
    parameter_group,
    parse_train_args,
    run_training,
)

pytestmark = pytest.mark.smoke

ROOT = Path(__file__).resolve().parents[1]
COLOURS = {"red": (230, 20, 20), "green": (20, 200, 20), "blue": (20, 20, 230), "yellow": (230, 230, 20)}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models on a shared 2-core box run much faster (and steadier) on one thread."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """8 records in the released (LLaVA) format: 4 single-image pointwise-style, 4 text-only pairwise-style."""
    root = tmp_path_factory.mktemp("train_data")
    records = []
    for i, (name, colour) in enumerate(COLOURS.items()):
        Image.new("RGB", (56, 56), colour).save(root / f"{name}.png")
        records.append(
            {
                "id": f"img{i}",
                "image": f"{name}.png",
                "conversations": [
                    {"from": "human", "value": "<image>\nWhat colour is the image?"},
                    {"from": "gpt", "value": f"The image is {name}."},
                ],
            }
        )
        records.append(
            {
                "id": f"txt{i}",
                "conversations": [
                    {"from": "human", "value": f"Answer 1: {i}. Answer 2: {i + 1}. Which is better?"},
                    {"from": "gpt", "value": f"Answer {1 + i % 2} is better."},
                ],
            }
        )
    (root / "train.json").write_text(json.dumps(records))
    return root


def _argv(model_dir, data_dir: Path, output_dir: Path, *extra: str) -> list[str]:
    return [
        "--model_name_or_path",
        str(model_dir),
        "--data_path",
        str(data_dir / "train.json"),
        "--media_folder",
        str(data_dir),
        "--output_dir",
        str(output_dir),
        "--use_cpu",
        "true",
        "--per_device_train_batch_size",
        "4",
        "--logging_steps",
        "1",
        "--save_strategy",
        "no",
        "--disable_tqdm",
        "true",
        "--seed",
        "0",
        *extra,
    ]


def _train(*argv: str, callbacks=None):
    return run_training(*parse_train_args(list(argv)), callbacks=callbacks)


def _losses(trainer) -> dict[int, float]:
    return {entry["step"]: entry["loss"] for entry in trainer.state.log_history if "loss" in entry}


def _state(model) -> dict[str, torch.Tensor]:
    return {name: param.detach().clone() for name, param in model.named_parameters()}


# --------------------------------------------------------------------------------------------------- arguments
@pytest.mark.unit
def test_help_documents_every_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_train_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for cls in (ModelArguments, DataArguments):
        for item in dataclasses.fields(cls):
            assert f"--{item.name}" in text, item.name
            assert item.metadata.get("help"), f"{cls.__name__}.{item.name} has no help"
    for flag in ("--resume_from_checkpoint", "--deepspeed", "--activation_checkpointing", "--report_to", "--bf16"):
        assert flag in text


@pytest.mark.unit
def test_recipe_yaml_maps_the_upstream_hyperparameters():
    model_args, data_args, args = parse_train_args(
        ["--config", str(ROOT / "scripts/configs/reward_qwen25vl_7b.yaml"), "--use_cpu", "true", "--tf32", "false"]
    )
    assert model_args.model_name_or_path == "Qwen/Qwen2.5-VL-7B-Instruct"
    assert model_args.tune_vision and model_args.tune_merger and model_args.tune_language_model
    assert (args.learning_rate, args.num_train_epochs, args.warmup_steps) == (2.5e-6, 3, 0.03)
    assert args.lr_scheduler_type.value == "cosine" and args.bf16 and args.activation_checkpointing
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps) == (2, 16)
    assert (data_args.model_max_length, data_args.frames_upbound) == (13000, 8)
    assert (data_args.image_max_pixels, data_args.video_max_pixels) == (262144, 16384)
    # a flag on the command line overrides the file
    _, data_args, _ = parse_train_args(
        [
            "--config",
            str(ROOT / "scripts/configs/tiny_cpu.yaml"),
            "--model_name_or_path",
            "m",
            "--data_path",
            "d",
            "--frames_upbound",
            "2",
        ]
    )
    assert data_args.frames_upbound == 2


@pytest.mark.unit
def test_parameter_groups_cover_every_architecture(tiny_models):
    from unifiedreward.modeling import model_family

    for arch in ("qwen2_5_vl", "qwen2_vl", "qwen3_vl", "llava_onevision"):
        model, _ = tiny_models.load(arch)
        family = model_family(model)
        groups = {parameter_group(name, family) for name, _ in model.named_parameters()}
        assert groups == {"vision", "merger", "language_model"}, arch
    assert parameter_group("model.visual.merger.mlp.0.weight", "qwen") == "merger"
    assert parameter_group("model.visual.blocks.0.attn.qkv.weight", "qwen") == "vision"
    assert parameter_group("base_model.model.model.language_model.layers.0.mlp.up_proj.weight", "qwen") == (
        "language_model"
    )
    with pytest.raises(ValueError, match="no known part"):
        parameter_group("model.audio_tower.x", "qwen")


@pytest.mark.unit
def test_deepspeed_configs_agree_with_the_trainer(tiny_models):
    configs = {
        name: json.loads((ROOT / "scripts" / f"{name}.json").read_text())
        for name in ("zero2", "zero3", "zero3_offload")
    }
    assert [c["zero_optimization"]["stage"] for c in configs.values()] == [2, 3, 3]
    assert configs["zero3_offload"]["zero_optimization"]["offload_optimizer"]["device"] == "cpu"
    assert configs["zero3_offload"]["zero_optimization"]["offload_param"]["device"] == "cpu"
    assert configs["zero3"]["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True
    for config in configs.values():
        # every setting the Trainer also has is "auto", so DeepSpeed takes it from the trainer's flags
        for key in (
            "train_batch_size",
            "train_micro_batch_size_per_gpu",
            "gradient_accumulation_steps",
            "gradient_clipping",
        ):
            assert config[key] == "auto", key
        assert config["bf16"]["enabled"] == "auto" and config["fp16"]["enabled"] == "auto"
        assert set(config["optimizer"]["params"].values()) == {"auto"}
        assert "scheduler" not in config  # the Trainer's cosine schedule is used
    pytest.importorskip("deepspeed")
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig

    _, _, args = parse_train_args(
        ["--config", str(ROOT / "scripts/configs/reward_qwen25vl_7b.yaml"), "--use_cpu", "true", "--tf32", "false"]
    )
    model, _ = tiny_models.load("qwen2_5_vl")
    for name in configs:
        hf_config = HfTrainerDeepSpeedConfig(str(ROOT / "scripts" / f"{name}.json"))
        hf_config.trainer_config_process(args)
        hf_config.trainer_config_finalize(args, model, num_training_steps=100)  # raises on any mismatch
        filled = hf_config.config
        assert filled["train_micro_batch_size_per_gpu"] == 2 and filled["gradient_accumulation_steps"] == 16
        assert filled["optimizer"]["params"]["lr"] == 2.5e-6 and filled["optimizer"]["params"]["weight_decay"] == 0
        assert filled["bf16"]["enabled"] is True and filled["fp16"]["enabled"] is False
        assert filled["gradient_clipping"] == args.max_grad_norm


# --------------------------------------------------------------------------------------------------- training
def test_short_run_drives_the_loss_down(tiny_models, data, tmp_path):
    trainer = _train(
        *_argv(tiny_models.path("qwen2_5_vl"), data, tmp_path / "out"),
        "--max_steps",
        "24",
        "--learning_rate",
        "1e-2",
        "--lr_scheduler_type",
        "constant",
        "--group_by_length",
        "true",
    )
    losses = _losses(trainer)
    first, last = losses[1], losses[max(losses)]
    assert last < 0.3 * first, losses
    assert isinstance(trainer._get_train_sampler(), EpochLengthGroupedSampler)
    assert (tmp_path / "out" / "model.safetensors").is_file() and (tmp_path / "out" / "tokenizer.json").is_file()


def test_resume_continues_step_count_and_schedule(tiny_models, data, tmp_path, monkeypatch):
    common = (
        "--max_steps",
        "6",
        "--learning_rate",
        "5e-3",
        "--lr_scheduler_type",
        "cosine",
        "--warmup_steps",
        "2",
        "--save_strategy",
        "steps",
        "--save_steps",
        "3",
    )
    model = tiny_models.path("qwen2_5_vl")
    reference = _train(*_argv(model, data, tmp_path / "ref"), *common)

    class Kill(TrainerCallback):  # stop right after checkpoint-3 is written, as if the job were killed
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == 3:
                control.should_training_stop = True

    out = tmp_path / "run"
    killed = _train(*_argv(model, data, out), *common, callbacks=[Kill()])
    assert killed.state.global_step == 3 and (out / "checkpoint-3" / "processor_config.json").is_file()
    # the resumed run loads one model, from the checkpoint (it used to load the base, then the checkpoint again)
    from transformers import PreTrainedModel

    loads = []
    original = PreTrainedModel.from_pretrained.__func__

    def counting(cls, path, *args, **kwargs):
        loads.append(str(path))
        return original(cls, path, *args, **kwargs)

    monkeypatch.setattr(PreTrainedModel, "from_pretrained", classmethod(counting))
    resumed = _train(*_argv(model, data, out), *common, "--resume_from_checkpoint", "auto")
    monkeypatch.undo()
    assert loads == [str(out / "checkpoint-3")]
    assert resumed.state.global_step == 6 and (out / "checkpoint-6").is_dir()

    def history(trainer):
        return {e["step"]: (e["learning_rate"], e["loss"]) for e in trainer.state.log_history if "loss" in e}

    ref, new = history(reference), history(resumed)
    assert sorted(new) == [1, 2, 3, 4, 5, 6]  # steps 1-3 come from the checkpoint's state
    for step in (4, 5, 6):
        assert new[step][0] == pytest.approx(ref[step][0], rel=1e-9), "learning-rate schedule"
        assert new[step][1] == pytest.approx(ref[step][1], rel=1e-3), "same data and weights"


@pytest.mark.parametrize("arch", ["qwen2_5_vl", "llava_onevision"])
def test_frozen_vision_tower(arch, tiny_models, data, tmp_path):
    from unifiedreward.modeling import load_reward_model, model_family

    base, _ = tiny_models.load(arch)
    before, family = _state(base), model_family(base)
    trainer = _train(
        *_argv(tiny_models.path(arch), data, tmp_path / "out"),
        "--max_steps",
        "3",
        "--learning_rate",
        "1e-2",
        "--tune_vision",
        "false",
    )
    changed = {"vision": set(), "merger": set(), "language_model": set()}
    for name, param in trainer.model.named_parameters():
        if not torch.equal(param.detach(), before[name]):
            changed[parameter_group(name, family)].add(name)
    assert not changed["vision"]
    assert changed["merger"] and changed["language_model"]
    # the final model reloads with the package's loader
    reloaded, _ = load_reward_model(tmp_path / "out")
    assert all(torch.equal(p, trainer.model.state_dict()[n]) for n, p in reloaded.state_dict().items())


def test_lora_trains_only_adapters_and_saves_a_merged_model(tiny_models, data, tmp_path):
    from unifiedreward.modeling import load_reward_model

    base, _ = tiny_models.load("qwen2_5_vl")
    before = _state(base)

    class Snapshot(TrainerCallback):  # the trained peft model, before the final merge
        def on_train_end(self, args, state, control, model=None, **kwargs):
            self.params = {n: (p.requires_grad, p.detach().clone()) for n, p in model.named_parameters()}

    snapshot = Snapshot()
    _train(
        *_argv(tiny_models.path("qwen2_5_vl"), data, tmp_path / "out"),
        "--max_steps",
        "3",
        "--learning_rate",
        "1e-2",
        "--lora_r",
        "4",
        "--tune_vision",
        "false",
        "--tune_merger",
        "false",
        callbacks=[snapshot],
    )
    assert any("lora_B" in name and value.abs().sum() > 0 for name, (_, value) in snapshot.params.items())
    for name, (trainable, value) in snapshot.params.items():
        assert trainable == ("lora_" in name), name
        if "lora_" not in name:
            original = name.removeprefix("base_model.model.").replace(".base_layer.", ".")
            assert torch.equal(value, before[original]), name
    assert (tmp_path / "out" / "adapter" / "adapter_config.json").is_file()
    assert not (tmp_path / "out" / "adapter_config.json").exists()
    merged, _ = load_reward_model(tmp_path / "out")
    changed = [n for n, p in merged.named_parameters() if not torch.equal(p, before[n])]
    assert changed and all(
        re.fullmatch(r"model\.language_model\.layers\.\d+\.(self_attn|mlp)\.\w+_proj\.weight", n) for n in changed
    ), changed


def test_too_many_bad_samples_stop_the_run(tiny_models, data, tmp_path):
    records = [
        {
            "id": f"bad{i}",
            "image": f"missing{i}.png",
            "conversations": [{"from": "human", "value": "<image>\nColour?"}, {"from": "gpt", "value": "Red."}],
        }
        for i in range(3)
    ] + json.loads((data / "train.json").read_text())
    broken = tmp_path / "data"
    broken.mkdir()
    (broken / "train.json").write_text(json.dumps(records))
    for name in COLOURS:
        (broken / f"{name}.png").write_bytes((data / f"{name}.png").read_bytes())
    with pytest.raises(BadDataError, match=r"max_bad_fraction=0\.1"):
        _train(
            *_argv(tiny_models.path("qwen2_5_vl"), broken, tmp_path / "out"),
            "--max_steps",
            "4",
            "--max_bad_fraction",
            "0.1",
            "--bad_fraction_min_samples",
            "4",
            "--train_sampling_strategy",
            "sequential",
        )


def test_final_bad_fraction_check_runs_when_training_ends(tiny_models, data, tmp_path):
    """Too few samples for the periodic check (min 1000), but the final check at the end of training stops it."""
    records = [
        {
            "id": "bad0",
            "image": "missing.png",
            "conversations": [{"from": "human", "value": "<image>\nColour?"}, {"from": "gpt", "value": "Red."}],
        }
    ] + json.loads((data / "train.json").read_text())
    broken = tmp_path / "data"
    broken.mkdir()
    (broken / "train.json").write_text(json.dumps(records))
    for name in COLOURS:
        (broken / f"{name}.png").write_bytes((data / f"{name}.png").read_bytes())
    with pytest.raises(BadDataError, match=r"1 of the \d+ samples.*max_bad_fraction=0\.01"):
        _train(
            *_argv(tiny_models.path("qwen2_5_vl"), broken, tmp_path / "out"),
            "--max_steps",
            "1",
            "--max_bad_fraction",
            "0.01",
            "--bad_fraction_min_samples",
            "1000",
            "--train_sampling_strategy",
            "sequential",
        )
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_sample_cache_flag_second_run_reads_the_cache(tiny_models, data, tmp_path):
    """--sample_cache_dir: the first run writes every sample it uses, the second reads them: same loss, no writes."""
    argv = (
        "--max_steps",
        "2",
        "--sample_cache_dir",
        str(tmp_path / "cache"),
        "--train_sampling_strategy",
        "sequential",
    )
    first = _train(*_argv(tiny_models.path("qwen2_5_vl"), data, tmp_path / "a"), *argv)
    second = _train(*_argv(tiny_models.path("qwen2_5_vl"), data, tmp_path / "b"), *argv)
    assert first.train_dataset.cache.writes == 8 and first.train_dataset.cache.hits == 0
    assert second.train_dataset.cache.hits == 8 and second.train_dataset.cache.writes == 0
    assert _losses(second) == pytest.approx(_losses(first), rel=1e-6)
    off = _train(*_argv(tiny_models.path("qwen2_5_vl"), data, tmp_path / "c"), *argv, "--sample_cache", "false")
    assert off.train_dataset.cache is None


def test_time_budget_flag_stops_training(tiny_models, data, tmp_path):
    """--max_train_minutes: a budget already spent after the first step ends the run there (max_steps 50)."""
    trainer = _train(
        *_argv(tiny_models.path("qwen2_5_vl"), data, tmp_path / "out"),
        "--max_steps",
        "50",
        "--max_train_minutes",
        "1e-6",
    )
    assert trainer.state.global_step == 1


# --------------------------------------------------------------------------------------------------- launcher
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_train_sh_two_cpu_processes_then_load_and_judge(tiny_models, data, tmp_path):
    """`bash train.sh` on CPU: torchrun with 2 processes over gloo, then the checkpoint is loaded and judges."""
    from unifiedreward.judge import GenerationConfig, JudgeRequest, RewardJudge, TransformersBackend
    from unifiedreward.modeling import load_reward_model

    out = tmp_path / "out"
    env = {
        **os.environ,
        "USE_CPU": "1",
        "NPROC_PER_NODE": "2",
        "MASTER_PORT": str(_free_port()),
        "PYTHON": sys.executable,
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
    }
    command = [
        "bash",
        str(ROOT / "train.sh"),
        "--model_name_or_path",
        str(tiny_models.path("qwen2_5_vl")),
        "--data_path",
        str(data / "train.json"),
        "--media_folder",
        str(data),
        "--output_dir",
        str(out),
        "--max_steps",
        "2",
        "--save_steps",
        "2",
        "--disable_tqdm",
        "true",
    ]
    result = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "--nproc_per_node 2" in result.stderr and "--deepspeed" not in result.stderr
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    assert state["train_batch_size"] == 2  # per device; 2 processes
    assert state["log_history"][0]["epoch"] == pytest.approx(0.5)  # 8 records / (2 per device x 2 processes)
    for folder in (out, out / "checkpoint-2"):
        model, processor = load_reward_model(folder)
        judge = RewardJudge(
            TransformersBackend(model, processor, batch_size=2), family="qwen", generation=GenerationConfig(16)
        )
        image = Image.fromarray(np.full((56, 56, 3), 200, dtype=np.uint8))
        (verdict,) = judge.judge(
            [JudgeRequest("image_generation", "pair_rank", images=[image, image], fields={"prompt": "a red cube"})]
        )
        # the tiny model's answer is meaningless, but it was generated and parsed without a backend error
        assert isinstance(verdict.raw, str) and "backend error" not in (verdict.reason or "")
