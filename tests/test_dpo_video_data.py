"""VideoDPO data: generation (mp4s, recorded seeds, resume, shards + merge), sifting with a pixel-reading judge into
``dpo_data.json``, and training on the sifted pairs; the thin ``VideoDPO/*.py`` scripts."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from unifiedreward.dpo.video_generate import GenerationArguments, run_generation, video_seed
from unifiedreward.dpo.video_sift import VideoSiftArguments, run_sift
from unifiedreward.dpo.video_tiny import save_tiny_wan
from unifiedreward.errors import DataError
from unifiedreward.judge import Generation, RewardJudge
from unifiedreward.media import load_video

ROOT = Path(__file__).resolve().parents[1]


class BrightnessJudge:
    """Reads the decoded clips: the brighter video wins; point score 1-10 from the mean brightness (3 decimals)."""

    def __init__(self):
        self.videos_seen = 0

    def generate(self, prompts, config):
        out = []
        for prompt in prompts:
            means = [float(video.frames.mean()) for video in prompt.videos]
            self.videos_seen += len(means)
            if len(means) == 2:
                out.append(Generation(f"Video {1 if means[0] > means[1] else 2} is better"))
            else:
                out.append(Generation(f"Final Score: {1 + 9 * means[0] / 255:.3f}"))
        return out


def _script(relative: str):
    spec = importlib.util.spec_from_file_location(relative.replace("/", "_")[:-3], ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("video_gen")
    model = str(save_tiny_wan(root / "wan"))
    prompts = root / "prompts.json"
    prompts.write_text(json.dumps([{"prompt": "a red cat", "id": 17}, "blue dog", {"caption": "green frog"}]))
    flags = ["--model", model, "--prompts_file", str(prompts), "--num_videos", "4", "--num_frames", "5",
             "--height", "32", "--width", "32", "--num_inference_steps", "2", "--max_sequence_length", "16",
             "--guidance_scale", "1.0", "--progress", "false"]  # fmt: skip
    script = _script("VideoDPO/data_generation.py")
    assert script.main([*flags, "--output_dir", str(root / "out")]) == 0
    return {"root": root, "model": model, "flags": flags, "out": root / "out", "script": script}


def test_generation_writes_decodable_mp4s_with_recorded_seeds(generated):
    out = generated["out"]
    records = json.loads((out / "data.json").read_text())
    assert [r["id"] for r in records] == ["17", "1", "2"]
    assert [r["caption"] for r in records] == ["a red cat", "blue dog", "green frog"]
    first = records[0]
    assert first["videos"] == [f"videos/17-{k}.mp4" for k in range(4)]
    assert first["seeds"] == [video_seed(0, "17", k) for k in range(4)] and len(set(first["seeds"])) == 4
    video = load_video(out / first["videos"][0])
    assert video.frames.shape == (5, 32, 32, 3) and video.frames.dtype == np.uint8 and video.fps == 8
    # resume: the same command generates nothing; other settings are refused
    args = GenerationArguments(model=generated["model"], prompts_file=str(generated["root"] / "prompts.json"),
                               output_dir=str(out), num_videos=4, num_frames=5, height=32, width=32,
                               num_inference_steps=2, max_sequence_length=16, guidance_scale=1.0, progress=False)  # fmt: skip
    assert run_generation(args, pipe=object())["generated_prompts"] == 0  # the pipeline is never called
    args.num_frames = 9
    with pytest.raises(DataError, match="num_frames"):
        run_generation(args, pipe=object())


def test_shards_merge_into_the_one_process_output(generated):
    script, flags, shard_out = generated["script"], generated["flags"], generated["root"] / "sharded"
    for shard in ("0/2", "1/2"):
        assert script.main([*flags, "--output_dir", str(shard_out), "--shard", shard]) == 0
    assert script.main([*flags, "--output_dir", str(shard_out), "--merge"]) == 0
    merged = json.loads((shard_out / "data.json").read_text())
    assert merged == json.loads((generated["out"] / "data.json").read_text())
    for record in merged:  # the same seed gives the same video, whichever process drew it
        for path in record["videos"]:
            a, b = load_video(shard_out / path).frames, load_video(generated["out"] / path).frames
            assert np.array_equal(a, b)


def test_sift_judges_the_pixels_and_its_output_trains(generated, tmp_path):
    from unifiedreward.dpo.video_args import VideoDPOArguments
    from unifiedreward.dpo.video_train import train

    out = generated["out"]
    judge = BrightnessJudge()
    args = VideoSiftArguments(data_path=str(out / "data.json"), output_path=str(tmp_path / "dpo_data.json"),
                              strategy="pointwise", num_frames=5, progress=False, num_workers=0)  # fmt: skip
    summary = run_sift(args, judge=RewardJudge(judge, family="qwen"))
    assert summary["inputs"] == 3 and summary["judge_calls"] == 12 and judge.videos_seen == 12
    pairs = json.loads((tmp_path / "dpo_data.json").read_text())
    assert len(pairs) >= 2 and {"caption", "chosen", "rejected", "chosen_score", "rejected_score", "evidence"} <= set(
        pairs[0]
    )
    records = {r["id"]: r for r in json.loads((out / "data.json").read_text())}
    for pair in pairs:
        brightness = [load_video(out / pair[k]).frames.mean() for k in ("chosen", "rejected")]
        assert brightness[0] > brightness[1] and pair["chosen_score"] > pair["rejected_score"]
        seeds = dict(zip(records[pair["id"]]["videos"], records[pair["id"]]["seeds"], strict=True))
        assert pair["chosen_seed"] == seeds[pair["chosen"]] and pair["caption"] == records[pair["id"]]["caption"]
    # the sift output is training data as is (paths relative to the generation folder)
    result = train(VideoDPOArguments(model=generated["model"], data_path=str(tmp_path / "dpo_data.json"),
                                     video_folder=str(out), output_dir=str(tmp_path / "train"), num_frames=5,
                                     height=32, width=32, max_sequence_length=16, max_train_steps=1,
                                     checkpointing_steps=0))  # fmt: skip
    assert result["global_step"] == 1 and np.isfinite(result["history"][0]["loss"])


def test_sift_every_pair_rewrites_a_finished_log_without_judging_again(generated, tmp_path):
    out, judge = generated["out"], BrightnessJudge()
    args = VideoSiftArguments(data_path=str(out / "data.json"), output_path=str(tmp_path / "d.json"),
                              strategy="pointwise", num_frames=5, progress=False, num_workers=0)  # fmt: skip
    run_sift(args, judge=RewardJudge(judge, family="qwen"))
    best_worst = json.loads((tmp_path / "d.json").read_text())
    args.pairs = "all"
    summary = run_sift(args, judge=RewardJudge(judge, family="qwen"))
    assert judge.videos_seen == 12  # resumed: the log is complete, only the pairs file is re-written
    pairs = json.loads((tmp_path / "d.json").read_text())
    log = [json.loads(line) for line in (tmp_path / "d.decisions.jsonl").read_text().splitlines()]
    distinct = sum(a != b for line in log for i, a in enumerate(line["evidence"]["scores"])
                   for b in line["evidence"]["scores"][i + 1 :])  # fmt: skip
    assert summary["pairs"] == len(pairs) == distinct > 12 and summary["kept"] == 3  # up to 6 pairs of 4 clips each
    for pair in pairs:
        brightness = [load_video(out / pair[k]).frames.mean() for k in ("chosen", "rejected")]
        assert brightness[0] > brightness[1] and pair["chosen_score"] > pair["rejected_score"]
    firsts = [next(p for p in pairs if p["id"] == r["id"]) for r in best_worst]
    assert [(p["chosen"], p["rejected"]) for p in firsts] == [(p["chosen"], p["rejected"]) for p in best_worst]
    args.strategy = "tournament"
    with pytest.raises(ValueError, match="--pairs all needs --strategy pointwise"):
        run_sift(args, judge=RewardJudge(judge, family="qwen"))


def test_sift_script_needs_a_judge(generated):
    """The thin script parses the flags and exits 2 (no model loaded) when neither judge flag is given."""
    script = _script("VideoDPO/sift_dpo_data.py")
    assert script.main(["--data_path", str(generated["out"] / "data.json"), "--progress", "false"]) == 2


def test_sift_min_side_upscales_the_frames_the_judge_sees(generated, tmp_path):
    class SizeJudge(BrightnessJudge):
        def __init__(self):
            super().__init__()
            self.shapes: set = set()

        def generate(self, prompts, config):
            self.shapes.update(video.frames.shape for p in prompts for video in p.videos)
            return super().generate(prompts, config)

    judge = SizeJudge()
    args = VideoSiftArguments(data_path=str(generated["out"] / "data.json"), output_path=str(tmp_path / "d.json"),
                              strategy="pointwise", num_frames=5, min_side=56, progress=False, num_workers=0)  # fmt: skip
    run_sift(args, judge=RewardJudge(judge, family="qwen"))
    assert judge.shapes == {(5, 56, 56, 3)}  # the 32 px clips, bicubic-upscaled frame by frame before judging
    pair = json.loads((tmp_path / "d.json").read_text())[0]
    assert load_video(generated["out"] / pair["chosen"]).frames.shape == (5, 32, 32, 3)  # the files are untouched
