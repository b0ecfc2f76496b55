"""VLM DPO training (unifiedreward.dpo.vlm, dpo_understanding/): loss at step 0, what trains, saving, resume,
launchers."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from unifiedreward.dpo.vlm import (
    DPODataArguments,
    DPOModelArguments,
    VLMDPOConfig,
    dpo_arguments,
    parse_dpo_args,
    run_dpo,
)
from unifiedreward.testing.media import make_frames, write_frame_folder
from unifiedreward.testing.tiny_models import save_tiny_model

pytestmark = pytest.mark.smoke

ROOT = Path(__file__).resolve().parents[1]
FAMILY = {"qwen2_5_vl": "qwen", "llava_onevision": "llava"}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("dpo_models")
    return {arch: save_tiny_model(arch, root / arch) for arch in FAMILY}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """pairs.json: 2 image pairs (infer+sift format) and 2 video pairs (a frame folder; upstream's frame list)."""
    root = tmp_path_factory.mktemp("dpo_data")
    Image.new("RGB", (56, 56), (230, 20, 20)).save(root / "red.png")
    Image.new("RGB", (56, 56), (20, 20, 230)).save(root / "blue.png")
    write_frame_folder(root / "clip", make_frames(4, 56, 56))
    frames = [f"clip/{i:04d}.jpg" for i in range(4)]
    records = [
        {"id": "i0", "image": "red.png", "prompt": "<image>\nWhat colour?", "chosen": "Red.", "rejected": "Blue.",
         "chosen_score": 80, "rejected_score": 10, "evidence": {}},
        {"id": "v0", "video": "clip", "prompt": "What moves?", "chosen": "A square.", "rejected": "A dog runs."},
        {"id": "i1", "image": "blue.png", "prompt": "Colour?", "chosen": "It is blue.", "rejected": "Green."},
        {"image": frames, "prompt": "Where does it go?", "chosen": "To the right.", "rejected": "Up."},
    ]  # fmt: skip
    (root / "pairs.json").write_text(json.dumps(records))
    return root


def _argv(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--model_name_or_path", str(model), "--data_path", str(data / "pairs.json"), "--image_folder", str(data),
        "--output_dir", str(out), "--use_cpu", "true", "--per_device_train_batch_size", "2", "--logging_steps", "1",
        "--save_strategy", "no", "--disable_tqdm", "true", "--seed", "0", "--max_steps", "2", *extra,
    ]  # fmt: skip


def _train(*argv: str, callbacks=None):
    return run_dpo(*parse_dpo_args(list(argv)), callbacks=callbacks)


def _state(model) -> dict[str, torch.Tensor]:
    return {name: param.detach().clone() for name, param in model.named_parameters()}


# --------------------------------------------------------------------------------------------------- arguments
@pytest.mark.unit
def test_help_documents_every_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_dpo_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for cls in (DPOModelArguments, DPODataArguments):
        for item in dataclasses.fields(cls):
            assert f"--{item.name}" in text and item.metadata.get("help"), item.name
    for flag in ("--gamma", "--dpo_alpha", "--beta", "--loss_type", "--deepspeed", "--report_to", "--bf16",
                 "--gradient_checkpointing", "--resume_from_checkpoint", "--trust_remote_code"):  # fmt: skip
        assert flag in text, flag


@pytest.mark.unit
def test_gamma_maps_upstream_sft_term_onto_trls_loss_list():
    config = VLMDPOConfig(output_dir="x", use_cpu=True, gamma=0.5)
    assert (config.loss_type, config.loss_weights) == (["sigmoid", "sft"], [1.0, 0.5])
    config = VLMDPOConfig(output_dir="x", use_cpu=True, loss_type=["ipo"], dpo_alpha=2.0, gamma=0.1)
    assert (config.loss_type, config.loss_weights) == (["ipo", "sft"], [2.0, 0.1])
    plain = VLMDPOConfig(output_dir="x", use_cpu=True)
    assert (plain.loss_type, plain.loss_weights, plain.beta, plain.bf16, plain.max_length) == (
        ["sigmoid"], None, 0.1, False, None)  # fmt: skip
    with pytest.raises(ValueError, match="not both"):
        VLMDPOConfig(output_dir="x", use_cpu=True, gamma=0.5, loss_weights=[1.0])
    model_args, data_args, args = dpo_arguments(
        model_name_or_path="m", data_path="d", use_cpu=True, lora_r=8, beta=0.2
    )
    assert (model_args.lora_r, data_args.data_path, args.beta) == (8, "d", 0.2)
    with pytest.raises(TypeError, match="unknown DPO arguments"):
        dpo_arguments(model_name_or_path="m", data_path="d", bogus=1)


@pytest.mark.unit
@pytest.mark.parametrize(("name", "accumulation", "max_length"), [("image", 8, 10000), ("video", 16, 32768)])
def test_recipe_configs_carry_upstream_hyperparameters(name, accumulation, max_length):
    path = ROOT / f"dpo_understanding/configs/{name}_qwen25vl_7b.yaml"
    values = yaml.safe_load(path.read_text())
    assert values["model_name_or_path"] == "Qwen/Qwen2.5-VL-7B-Instruct"
    assert (values["beta"], values["learning_rate"], values["num_train_epochs"]) == (0.1, 5e-7, 3)
    assert (values["lr_scheduler_type"], values["warmup_steps"], values["gamma"]) == ("cosine", 0.3, 0.0)
    assert (values["per_device_train_batch_size"], values["gradient_accumulation_steps"]) == (1, accumulation)
    assert values["model_max_length"] == max_length and values["bf16"] and values["gradient_checkpointing"]
    # every key is a flag (the file parses; bf16 needs use_cpu on this machine)
    _, data_args, args = parse_dpo_args(["--config", str(path), "--use_cpu", "true", "--tf32", "false"])
    assert data_args.model_max_length == max_length and args.learning_rate == 5e-7
    launcher = (ROOT / f"dpo_understanding/launchers/dpo_{name}_understand_qwen25vl_7b.sh").read_text()
    assert f"RECIPE_GLOBAL_BATCH={4 * accumulation}" in launcher
    assert "zero3_offload.json" in (ROOT / "dpo_understanding/launchers/_launch.sh").read_text()
    assert json.loads((ROOT / "scripts/zero3_offload.json").read_text())["zero_optimization"]["stage"] == 3


@pytest.mark.parametrize("name", ["zero2", "zero3", "zero3_offload"])
def test_deepspeed_configs_take_the_dpo_recipe(name, models):
    """The read-only scripts/zero*.json fill their "auto" values from the DPO recipe without a mismatch."""
    pytest.importorskip("deepspeed")
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig, unset_hf_deepspeed_config

    from unifiedreward.modeling import load_reward_model

    _, _, args = parse_dpo_args(
        ["--config", str(ROOT / "dpo_understanding/configs/image_qwen25vl_7b.yaml"), "--use_cpu", "true",
         "--tf32", "false"]
    )  # fmt: skip
    model = load_reward_model(models["qwen2_5_vl"])[0]  # before the config: a ZeRO-3 config changes loading
    hf_config = HfTrainerDeepSpeedConfig(str(ROOT / "scripts" / f"{name}.json"))
    try:
        hf_config.trainer_config_process(args)
        hf_config.trainer_config_finalize(args, model, num_training_steps=100)  # raises on any mismatch
        filled = hf_config.config
    finally:
        unset_hf_deepspeed_config()
    assert (filled["train_micro_batch_size_per_gpu"], filled["gradient_accumulation_steps"]) == (1, 8)
    assert filled["optimizer"]["params"]["lr"] == 5e-7 and filled["optimizer"]["params"]["weight_decay"] == 0
    assert filled["bf16"]["enabled"] is True and filled["fp16"]["enabled"] is False


# --------------------------------------------------------------------------------------------------- training
@pytest.mark.parametrize(("arch", "lora"), [("qwen2_5_vl", "0"), ("llava_onevision", "4")])
def test_step_zero_sigmoid_loss_is_ln2(arch, lora, models, data, tmp_path):
    """Policy == reference at step 0, so every pair's margin is 0 and -log sigmoid(0) = ln 2, on a real batch."""
    trainer = _train(*_argv(models[arch], data, tmp_path / "out", "--max_steps", "1", "--lora_r", lora,
                            "--per_device_train_batch_size", "4"))  # fmt: skip
    first = trainer.state.log_history[0]
    assert first["loss"] == pytest.approx(math.log(2), abs=1e-5)
    assert first["rewards/margins"] == pytest.approx(0.0, abs=1e-5)
    assert first["logps/chosen"] < 0 and first["num_tokens"] > 0


def test_one_step_changes_only_the_trainable_parameters(models, data, tmp_path):
    from unifiedreward.modeling import load_reward_model

    # driven from Python, as a later pipeline stage would
    trainer = run_dpo(
        *dpo_arguments(
            model_name_or_path=str(models["qwen2_5_vl"]), data_path=str(data / "pairs.json"), image_folder=str(data),
            output_dir=str(tmp_path / "out"), use_cpu=True, per_device_train_batch_size=2, max_steps=1,
            save_strategy="no", disable_tqdm=True, tune_vision=False, tune_merger=False, learning_rate=1e-3,
        )
    )  # fmt: skip
    before = _state(load_reward_model(models["qwen2_5_vl"])[0])
    after = _state(trainer.model)
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    trainable = {name for name, param in trainer.model.named_parameters() if param.requires_grad}
    assert trainable and not {name for name in trainable if name.startswith("model.visual.")}
    assert changed and changed <= trainable
    assert len(changed) >= len(trainable) // 2  # most of the language model moved
    assert all(torch.equal(before[name], p) for name, p in trainer.ref_model.named_parameters())  # reference frozen


@pytest.mark.parametrize("arch", list(FAMILY))
@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_two_step_run_saves_a_model_the_judge_loads(arch, lora, models, data, tmp_path, monkeypatch):
    from unifiedreward.judge import GenerationConfig, JudgeRequest, RewardJudge, TransformersBackend
    from unifiedreward.modeling import load_reward_model, model_family

    extra = ["--lora_r", "4", "--tune_vision", "false"] if lora else ["--gradient_checkpointing", "true"]
    if arch == "qwen2_5_vl" and not lora:  # wandb, offline (the training extras' logger)
        monkeypatch.setenv("WANDB_MODE", "offline")
        monkeypatch.setenv("WANDB_DIR", str(tmp_path))
        monkeypatch.setenv("WANDB_PROJECT", "dpo-test")
        extra += ["--report_to", "wandb", "--run_name", "tiny-dpo"]
    out = tmp_path / "out"
    trainer = _train(*_argv(models[arch], data, out, *extra))
    assert trainer.state.global_step == 2
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 2 and all(math.isfinite(loss) for loss in losses)
    if lora:  # the reference is the adapter-disabled model: no copy, no "ref" adapter
        assert trainer.ref_model is None and set(trainer.model.peft_config) == {"default"}
        assert (out / "adapter" / "adapter_config.json").is_file()
    else:
        assert trainer.ref_model is not None
    if "--report_to" in extra:
        assert list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    assert json.loads((out / "skipped_records.json").read_text())["total"] == 4
    model, processor = load_reward_model(out)
    judge = RewardJudge(TransformersBackend(model, processor, batch_size=1), family=model_family(model),
                        generation=GenerationConfig(8))  # fmt: skip
    image = Image.fromarray(np.full((56, 56, 3), 200, dtype=np.uint8))
    (verdict,) = judge.judge(
        [JudgeRequest("image_generation", "pair_rank", images=[image, image], fields={"prompt": "a red cube"})]
    )
    assert isinstance(verdict.raw, str) and "backend error" not in (verdict.reason or "")


def test_qwen3_vl_trains_on_images_and_videos(data, tmp_path):
    """Qwen3-VL (per-frame timestamps from the clip's metadata) through the same path, two steps."""
    model = save_tiny_model("qwen3_vl", tmp_path / "qwen3_vl")
    trainer = _train(*_argv(model, data, tmp_path / "out", "--per_device_train_batch_size", "4"))
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert trainer.state.global_step == 2 and losses[0] == pytest.approx(math.log(2), abs=1e-5)


@pytest.mark.parametrize("lora", ["0", "4"], ids=["full", "lora"])
def test_resumed_run_continues_step_and_lr_schedule(lora, models, data, tmp_path):
    """Steps 3-4 of a run resumed at checkpoint-2 equal those of the uninterrupted run (weights, LR, data order);
    a resume that silently restarted from the base weights would show ln 2 again at step 3."""
    common = ("--max_steps", "4", "--save_strategy", "steps", "--save_steps", "2", "--learning_rate", "1e-2",
              "--lr_scheduler_type", "cosine", "--warmup_steps", "1", "--lora_r", lora)  # fmt: skip
    whole = _train(*_argv(models["qwen2_5_vl"], data, tmp_path / "a", *common))
    from transformers import TrainerCallback

    class StepCounter(TrainerCallback):
        def __init__(self):
            self.steps: list[int] = []

        def on_step_end(self, args, state, control, **kwargs):
            self.steps.append(state.global_step)

    counter = StepCounter()
    resumed = _train(*_argv(models["qwen2_5_vl"], data, tmp_path / "b", *common, "--resume_from_checkpoint",
                            str(tmp_path / "a" / "checkpoint-2")), callbacks=[counter])  # fmt: skip

    def history(trainer):
        return {e["step"]: (e["loss"], e["learning_rate"]) for e in trainer.state.log_history if "loss" in e}

    assert counter.steps == [3, 4] and resumed.state.global_step == 4  # only the missing steps ran
    assert history(whole)[3][0] < math.log(2) - 1e-3  # the policy had moved away from the reference
    for step in (3, 4):
        assert history(resumed)[step][1] == pytest.approx(history(whole)[step][1], rel=1e-9)
        assert history(resumed)[step][0] == pytest.approx(history(whole)[step][0], rel=1e-4)


@pytest.mark.unit
def test_max_length_is_refused(models, data, tmp_path):
    with pytest.raises(ValueError, match="model_max_length"):
        _train(*_argv(models["qwen2_5_vl"], data, tmp_path / "out", "--max_length", "512"))


# --------------------------------------------------------------------------------------------------- launchers
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_cpu_launcher_runs_two_processes_over_gloo(models, data, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "USE_CPU": "1", "NPROC_PER_NODE": "2", "MASTER_PORT": str(_free_port()),
           "PYTHON": sys.executable, "HF_HUB_OFFLINE": "1"}  # fmt: skip
    command = ["bash", str(ROOT / "dpo_understanding/launchers/dpo_video_understand_qwen25vl_7b.sh"),
               "--model_name_or_path", str(models["qwen2_5_vl"]), "--data_path", str(data / "pairs.json"),
               "--image_folder", str(data), "--output_dir", str(out), "--max_steps", "2", "--disable_tqdm", "true"]  # fmt: skip
    result = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=150, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "--nproc_per_node 2" in result.stderr and "--deepspeed" not in result.stderr
    assert "gloo" in result.stderr
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 2 and state["train_batch_size"] == 2
    assert state["log_history"][0]["epoch"] == pytest.approx(1.0)  # 4 pairs / (2 per device x 2 processes)
