"""DiffusionDPO data: generation (every seed recorded, resume, shards + merge) and sifting with the preference
library into dpo_data.json (loads with datasets, trains)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from unifiedreward.dpo.diffusion_generate import GenerationArguments, image_seed, run_generation
from unifiedreward.dpo.diffusion_sift import SiftArguments, run_sift
from unifiedreward.dpo.diffusion_tiny import save_tiny_sd
from unifiedreward.errors import SettingsError
from unifiedreward.judge import Generation, RewardJudge

pytestmark = pytest.mark.smoke


class CountingPipe:
    """Wraps a pipeline and counts its calls."""

    def __init__(self, pipe):
        self.pipe, self.calls = pipe, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.pipe(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.pipe, name)


class BrightnessJudge:
    """Scripted reward-model backend: brighter images are better. Pair prompts: the brighter image wins; point
    prompts of one batch: the brightest gets 5, the darkest 1, the others 3 (noise images differ little in mean)."""

    def __init__(self):
        self.prompts = 0

    def generate(self, prompts, config):
        self.prompts += len(prompts)
        means = [[float(np.asarray(im, dtype=np.float32).mean()) for im in p.images] for p in prompts]
        points = [m[0] for m in means if len(m) == 1]
        out = []
        for m in means:
            if len(m) == 2:
                out.append(Generation("Image 1 is better." if m[0] > m[1] else "Image 2 is better."))
            else:
                score = 5 if m[0] == max(points) else 1 if m[0] == min(points) else 3
                out.append(Generation(f"Final Score: {score}"))
        return out


@pytest.fixture(scope="module")
def sd(tmp_path_factory):
    from diffusers import DiffusionPipeline

    path = save_tiny_sd(tmp_path_factory.mktemp("m") / "sd")
    return str(path), DiffusionPipeline.from_pretrained(path)


@pytest.fixture(scope="module")
def prompts(tmp_path_factory):
    path = tmp_path_factory.mktemp("p") / "prompts.json"
    path.write_text(json.dumps([{"prompt": "a red cat", "tag": 1}, {"prompt": "two blue dogs", "id": "x/7"}]))
    return str(path)


def _gen_args(sd_path, prompts, out, **overrides) -> GenerationArguments:
    values = dict(data_path=prompts, output_dir=str(out), pretrained_model=sd_path, num_images=4,
                  num_inference_steps=1, guidance_scale=0.0, height=16, width=16, seed=3, images_per_call=3,
                  progress=False, chunk_size=2)  # fmt: skip
    values.update(overrides)
    return GenerationArguments(**values)


@pytest.fixture(scope="module")
def generated(sd, prompts, tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    pipe = CountingPipe(sd[1])
    result = run_generation(_gen_args(sd[0], prompts, out), pipe=pipe)
    return out, result, pipe


def test_generation_records_every_seed_and_reproduces_each_image(sd, generated):
    out, result, pipe = generated
    data = json.loads((out / "data.json").read_text())
    assert [r["id"] for r in data] == ["0", "x/7"] and data[0]["tag"] == 1
    assert result["images"] == 8 and pipe.calls == 4  # 4 images in calls of 3 + 1
    first = data[1]
    assert first["caption"] == "two blue dogs" and first["images"][0] == "image_x_7_0.png"
    assert first["seeds"] == [image_seed(3, "x/7", j) for j in range(4)] and len(set(first["seeds"])) == 4
    again = sd[1]("two blue dogs", num_inference_steps=1, guidance_scale=0.0, height=16, width=16,
                  generator=torch.Generator().manual_seed(first["seeds"][3])).images[0]  # fmt: skip
    assert np.array_equal(np.asarray(again), np.asarray(Image.open(out / "images" / first["images"][3])))


def test_generation_resumes_and_refuses_changed_settings(sd, prompts, generated):
    out, _, _ = generated
    pipe = CountingPipe(sd[1])
    assert run_generation(_gen_args(sd[0], prompts, out), pipe=pipe)["images"] == 0 and pipe.calls == 0
    with pytest.raises(SettingsError, match="num_inference_steps"):
        run_generation(_gen_args(sd[0], prompts, out, num_inference_steps=2), pipe=pipe)


def test_generation_shards_merge_into_the_single_run(sd, prompts, generated, tmp_path):
    out, _, _ = generated
    for shard in ("0/2", "1/2"):
        run_generation(_gen_args(sd[0], prompts, tmp_path, shard=shard), pipe=sd[1])
    assert not (tmp_path / "data.json").exists()
    run_generation(_gen_args(sd[0], prompts, tmp_path, merge=True))
    assert json.loads((tmp_path / "data.json").read_text()) == json.loads((out / "data.json").read_text())
    for name in ("image_0_0.png", "image_x_7_3.png"):
        assert (tmp_path / "images" / name).read_bytes() == (out / "images" / name).read_bytes()


def test_sift_output_loads_with_datasets_and_trains(sd, generated, tmp_path):
    import datasets

    from unifiedreward.dpo.diffusion_args import DiffusionDPOArguments
    from unifiedreward.dpo.diffusion_train import train

    gen_dir, _, _ = generated
    backend = BrightnessJudge()
    judge = RewardJudge(backend, family="qwen")
    summary = run_sift(SiftArguments(data_dir=str(gen_dir), output_dir=str(tmp_path), progress=False), judge=judge)
    assert summary["inputs"] == 2 and summary["judge_calls"] == backend.prompts
    pairs = json.loads((tmp_path / "dpo_data.json").read_text())
    assert len(pairs) == summary["kept"] == 2
    data = datasets.load_dataset("json", data_files=str(tmp_path / "dpo_data.json"), split="train")
    assert {"caption", "jpg_0", "jpg_1", "label_0", "chosen_score", "rejected_score", "evidence"} <= set(
        data.column_names)
    assert "prompt" not in data.column_names and "images" not in data.column_names
    log = {json.loads(line)["id"]: json.loads(line) for line in (tmp_path / "sift.decisions.jsonl").open()}
    for pair in pairs:
        assert pair["label_0"] == 1 and pair["chosen_score"] > pair["rejected_score"]
        assert json.loads(pair["evidence"])["strategy"] == "upstream"
        chosen = np.asarray(Image.open(tmp_path / "images_dpo" / pair["jpg_0"]), dtype=np.float32).mean()
        rejected = np.asarray(Image.open(tmp_path / "images_dpo" / pair["jpg_1"]), dtype=np.float32).mean()
        assert chosen > rejected
        seeds = [c["seed"] for c in log[pair["id"]]["candidates"]]
        assert pair["chosen_seed"] in seeds and pair["rejected_seed"] in seeds
    result = train(DiffusionDPOArguments(pretrained_model=sd[0], dataset_dir=str(tmp_path),
                                         output_dir=str(tmp_path / "run"), resolution=16, max_train_steps=1,
                                         checkpointing_steps=0, lora_rank=2))  # fmt: skip
    assert result["global_step"] == 1


def test_sift_tournament_strategy_by_flag(generated, tmp_path):
    gen_dir, _, _ = generated
    backend = BrightnessJudge()
    args = SiftArguments(data_dir=str(gen_dir), output_dir=str(tmp_path), strategy="tournament", progress=False)
    summary = run_sift(args, judge=RewardJudge(backend, family="qwen"))
    assert summary["judge_calls"] == 2 * 4 * 3 and summary["kept"] >= 1  # 4 images: 12 ordered pairs each
    for pair in json.loads((tmp_path / "dpo_data.json").read_text()):
        evidence = json.loads(pair["evidence"])
        assert evidence["strategy"] == "tournament"
        means = [np.asarray(Image.open(tmp_path / "images_dpo" / pair[k]), dtype=np.float32).mean()
                 for k in ("jpg_0", "jpg_1")]  # fmt: skip
        assert means[0] > means[1]


def test_sift_min_side_upscales_what_the_judge_sees(generated, tmp_path):
    gen_dir, _, _ = generated

    class SizeJudge(BrightnessJudge):
        def __init__(self):
            super().__init__()
            self.sizes: set = set()

        def generate(self, prompts, config):
            self.sizes.update(im.size for p in prompts for im in p.images)
            return super().generate(prompts, config)

    backend = SizeJudge()
    args = SiftArguments(data_dir=str(gen_dir), output_dir=str(tmp_path), strategy="tournament", min_side=84,
                         progress=False)  # fmt: skip
    run_sift(args, judge=RewardJudge(backend, family="qwen"))
    assert backend.sizes == {(84, 84)}  # the generated 32 px images, bicubic-upscaled before judging
    pair = json.loads((tmp_path / "dpo_data.json").read_text())[0]
    assert Image.open(tmp_path / "images_dpo" / pair["jpg_0"]).size != (84, 84)  # the pairs keep the originals
