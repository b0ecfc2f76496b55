"""``infer+sift.py``: reading inputs, resume, shards + merge, unreadable media, summary; tiny models end to end."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from unifiedreward.errors import DataError, SettingsError
from unifiedreward.judge import Generation, RewardJudge
from unifiedreward.preference.arguments import PreferenceArguments
from unifiedreward.preference.pipeline import output_files, read_items, run_preference
from unifiedreward.preference.sampling import input_seed, policy_prompt
from unifiedreward.testing.media import make_frames, make_image, write_frame_folder, write_video

ROOT = Path(__file__).resolve().parents[1]


class ScriptedPolicy:
    """Samples ``"<question> <<s{j}x{seed % 7}>>"``: deterministic per (question, seed, j); can fail on call k."""

    def __init__(self, fail_on_call: int | None = None):
        self.calls = 0
        self.fail_on_call = fail_on_call

    def sample(self, prompts, config, *, seeds=None):
        self.calls += 1
        if self.fail_on_call is not None and self.calls == self.fail_on_call:
            raise RuntimeError("killed")
        out = []
        for _prompt, seed in zip(prompts, seeds, strict=True):
            row = [Generation(f"answer <<s{j}x{seed % 7}>>", meta={"seed": seed, "sample_index": j,
                                                                  "finish_reason": "stop"}) for j in range(config.n)]
            out.append(row)
        return out


class LabelJudgeBackend:
    """Prefers the answer with the higher sample index ``j``; point score = 10 * j (0-100 template)."""

    def __init__(self):
        self.prompts = 0

    def generate(self, prompts, config):
        out = []
        for prompt in prompts:
            self.prompts += 1
            labels = [int(j) for j in re.findall(r"<<s(\d+)x\d+>>", prompt.text())]
            if len(labels) == 2:
                out.append(Generation(f"Answer {1 if labels[0] > labels[1] else 2} is better"))
            else:
                out.append(Generation(f"Final Score: {10 * labels[0]}"))
        return out


def _data(tmp_path: Path, n: int = 5, missing: tuple[int, ...] = (3,)) -> Path:
    images = tmp_path / "images"
    images.mkdir(exist_ok=True)
    records = []
    for i in range(n):
        name = f"img{i}.png"
        if i not in missing:
            make_image(32, 32, (20 * i, 0, 0)).save(images / name)
        records.append({"id": f"q{i}", "prompt": f"<image>\nWhat colour is shape {i}?", "image": name, "split": "t"})
    path = tmp_path / "data.json"
    path.write_text(json.dumps(records))
    return path


def _args(tmp_path: Path, data: Path, out: str = "out/pairs.json", **kw) -> PreferenceArguments:
    values = dict(data_path=str(data), output_path=str(tmp_path / out), image_folder=str(tmp_path / "images"),
                  num_candidates=4, chunk_size=2, num_workers=0, progress=False)  # fmt: skip
    values.update(kw)
    return PreferenceArguments(**values)


def _run(args, policy=None):
    judge = RewardJudge(LabelJudgeBackend(), family="qwen")
    return run_preference(args, policy=policy or ScriptedPolicy(), judge=judge)


def _bytes(args, shard=None) -> tuple[bytes, bytes]:
    files = output_files(args.output_path, shard)
    return files["decisions"].read_bytes(), files["pairs"].read_bytes()


@pytest.mark.unit
def test_run_writes_upstream_pairs_and_counts_unreadable_media(tmp_path):
    args = _args(tmp_path, _data(tmp_path))
    summary = _run(args)
    pairs = json.loads(Path(args.output_path).read_text())
    assert [p["id"] for p in pairs] == ["q0", "q1", "q2", "q4"]
    first = pairs[0]
    assert list(first)[:7] == ["id", "image", "prompt", "chosen", "rejected", "chosen_score", "rejected_score"]
    assert first["image"] == "img0.png" and first["split"] == "t" and first["prompt"].startswith("<image>")
    seed = input_seed(0, "q0")
    # rounds (0,1) -> 1, (2,3) -> 3; winners score 10, 30; losers 0, 20 -> chosen s3, rejected s0
    assert first["chosen"] == f"answer <<s3x{seed % 7}>>" and first["rejected"] == f"answer <<s0x{seed % 7}>>"
    assert (first["chosen_score"], first["rejected_score"]) == (30.0, 0.0)
    assert first["evidence"]["seeds"] == [seed] * 4 and first["evidence"]["strategy"] == "upstream"
    assert summary["inputs"] == 5 and summary["kept"] == 4
    assert summary["dropped"] == {"unreadable_media": 1} and summary["failed_ids"] == {"unreadable_media": ["q3"]}
    assert summary["judge_calls"] == 4 * (2 + 4) and summary["judge_calls_per_kept"] == 6
    stored = json.loads(output_files(args.output_path)["summary"].read_text())
    assert stored["kept"] == 4
    log = [json.loads(x) for x in output_files(args.output_path)["decisions"].read_text().splitlines()]
    assert "img3.png" in log[3]["error"] and log[3]["reason"] == "unreadable_media"


@pytest.mark.unit
def test_killed_run_resumes_byte_identical(tmp_path):
    data = _data(tmp_path, n=7)
    clean = _args(tmp_path, data, "clean/pairs.json")
    _run(clean)
    resumed = _args(tmp_path, data, "resumed/pairs.json")
    with pytest.raises(RuntimeError, match="killed"):
        _run(resumed, ScriptedPolicy(fail_on_call=3))  # chunks 1-2 written, killed in chunk 3
    written = output_files(resumed.output_path)["decisions"].read_text().splitlines()
    assert [json.loads(x)["id"] for x in written] == ["q0", "q1", "q2", "q3"]
    policy = ScriptedPolicy()
    summary = _run(resumed, policy)
    assert policy.calls == 2 and summary["inputs"] == 7  # only the 3 remaining inputs, in 2 chunks
    assert _bytes(resumed) == _bytes(clean)
    with pytest.raises(SettingsError, match="num_candidates"):
        _run(_args(tmp_path, data, "resumed/pairs.json", num_candidates=6))


@pytest.mark.unit
def test_two_shards_merge_to_the_one_process_output(tmp_path):
    data = _data(tmp_path, n=7)
    whole = _args(tmp_path, data, "whole/pairs.json")
    _run(whole)
    for index in range(2):
        _run(_args(tmp_path, data, "sharded/pairs.json", shard=f"{index}/2"))
    shard0 = output_files(tmp_path / "sharded/pairs.json", (0, 2))["decisions"]
    assert shard0.name == "pairs.shard-0-of-2.decisions.jsonl"
    assert [json.loads(x)["id"] for x in shard0.read_text().splitlines()] == ["q0", "q2", "q4", "q6"]
    merged = _args(tmp_path, data, "sharded/pairs.json", merge=True)
    summary = run_preference(merged)
    assert summary["merged_shards"] == 2 and summary["kept"] == 6
    assert _bytes(merged) == _bytes(whole)


@pytest.mark.unit
def test_merge_refuses_missing_shards_and_bad_inputs_fail_early(tmp_path):
    data = _data(tmp_path, n=4)
    _run(_args(tmp_path, data, "s/pairs.json", shard="0/3"))
    with pytest.raises(DataError, match=r"shards \[1, 2\] of 3"):
        run_preference(_args(tmp_path, data, "s/pairs.json", merge=True))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "prompt": "q", "image": "a.png"}\n{"id": "1", "prompt": "q", "image": "b.png"}\n')
    with pytest.raises(DataError, match="id used twice"):
        read_items(bad, "image_understanding")
    bad.write_text('{"prompt": "q"}\n')
    with pytest.raises(DataError, match="media under 'image'"):
        read_items(bad, "image_understanding")
    with pytest.raises(ValueError, match="exactly one of --policy"):
        run_preference(_args(tmp_path, data, policy="a", policy_base_url="http://x"))


@pytest.mark.unit
def test_video_items_read_upstreams_frame_lists_and_policy_prompt_forms(tmp_path):
    data = tmp_path / "v.json"
    data.write_text(json.dumps([{"prompt": "q", "image": ["f0.png", "f1.png"]}, {"prompt": "q", "video": "c.mp4"}]))
    first, second = read_items(data, "video_understanding")
    assert (first.id, first.media, second.id, second.media) == ("0", ["f0.png", "f1.png"], "1", "c.mp4")
    image = make_image(16, 16)
    qwen = policy_prompt("<image>\nWhat is it?", "qwen", image=image)
    assert qwen.messages[0]["content"] == [{"type": "image"}, {"type": "text", "text": "What is it?"}]
    assert qwen.images == [image]
    frames = make_frames(3, 16, 16)
    from unifiedreward.media import resolve_media

    video = resolve_media(frames, "video")
    llava = policy_prompt("What moves?", "llava", video=video)
    assert llava.messages[1]["content"][0]["text"] == "<image>\n" * 3 + "What moves?"
    assert len(llava.images) == 3 and llava.videos == []


# ----------------------------------------------------------------------------------------------------------------
# tiny models end to end


def _load_script(relative: str):
    spec = importlib.util.spec_from_file_location("infer_sift", ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_pair(tmp_path_factory):
    """A tiny Qwen2.5-VL policy (seed 1) and a tiny reward model (seed 0), saved like hub checkpoints."""
    from unifiedreward.testing.tiny_models import save_tiny_model

    root = tmp_path_factory.mktemp("tiny_preference")
    return str(save_tiny_model("qwen2_5_vl", root / "policy", seed=1)), str(
        save_tiny_model("qwen2_5_vl", root / "reward", seed=0)
    )


def _tiny_flags(policy: str, reward: str, out: Path, **extra) -> list[str]:
    flags = {"policy": policy, "reward_model": reward, "output_path": str(out), "num_candidates": 4,
             "max_new_tokens": 6, "judge_max_new_tokens": 6, "strategy": "tournament", "min_probability": 0.0,
             "chunk_size": 2, "num_workers": 0, "progress": False, "dtype": "float32", **extra}  # fmt: skip
    return [x for key, value in flags.items() for x in (f"--{key}", str(value))]


@pytest.mark.smoke
def test_tiny_models_image_end_to_end_and_resume(tiny_pair, tmp_path):
    policy, reward = tiny_pair
    data = _data(tmp_path, n=3, missing=())
    script = _load_script("preference_data_construction/image_understanding/infer+sift.py")
    flags = ["--data_path", str(data), "--image_folder", str(tmp_path / "images")]
    assert script.main([*flags, *_tiny_flags(policy, reward, tmp_path / "a/pairs.json")]) == 0
    pairs = json.loads((tmp_path / "a/pairs.json").read_text())
    assert [p["id"] for p in pairs] == ["q0", "q1", "q2"]
    for pair in pairs:
        assert isinstance(pair["chosen"], str) and pair["chosen"] != pair["rejected"]
        assert pair["evidence"]["scoring"] == "probabilities" and pair["evidence"]["judge_calls"] == 12
        assert pair["chosen_score"] >= pair["rejected_score"]
    # the same run, one input at a time through a resumed output, gives the same bytes
    out_b = tmp_path / "b/pairs.json"
    assert script.main([*flags, *_tiny_flags(policy, reward, out_b, chunk_size=1)]) == 0
    assert out_b.read_bytes() == (tmp_path / "a/pairs.json").read_bytes()


@pytest.mark.smoke
def test_tiny_models_video_end_to_end(tiny_pair, tmp_path):
    policy, reward = tiny_pair
    videos = tmp_path / "videos"
    videos.mkdir()
    write_video(videos / "clip.mp4", make_frames(8, 32, 32))
    write_frame_folder(videos / "frames", make_frames(8, 32, 32, seed=1), ext="png")
    names = sorted(p.name for p in (videos / "frames").iterdir())
    records = [{"prompt": "Where does the square go?", "video": "clip.mp4"},
               {"prompt": "Where does the square go?", "image": [f"frames/{n}" for n in names]},
               {"prompt": "And here?", "video": "frames"}]  # fmt: skip
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    script = _load_script("preference_data_construction/video_understanding/infer+sift.py")
    argv = ["--data_path", str(data), "--video_folder", str(videos), "--num_frames", "4",
            *_tiny_flags(policy, reward, tmp_path / "out/pairs.jsonl")]  # fmt: skip
    assert script.main(argv) == 0
    pairs = [json.loads(x) for x in (tmp_path / "out/pairs.jsonl").read_text().splitlines()]
    assert [p["id"] for p in pairs] == ["0", "1", "2"]
    assert pairs[0]["video"] == "clip.mp4" and pairs[1]["image"] == [f"frames/{n}" for n in names]
    assert all(p["chosen"] != p["rejected"] and p["evidence"]["judge_calls"] == 12 for p in pairs)
    # upstream's strategy with a random reward model: no verdict parses, so no round makes a winner
    argv = [*argv, "--output_path", str(tmp_path / "up/pairs.json"), "--strategy", "upstream"]  # later flags win
    assert script.main(argv) == 0
    summary = json.loads((tmp_path / "up/pairs.summary.json").read_text())
    assert summary["inputs"] == 3 and summary["candidates"] == 12 and summary["kept"] == 0
    assert summary["dropped"] == {"no_decisive_round": 3} and summary["judge_calls"] == 3 * 2
    assert json.loads((tmp_path / "up/pairs.json").read_text()) == []


@pytest.mark.unit
@pytest.mark.parametrize("config", sorted((ROOT / "preference_data_construction" / "configs").glob("*.yaml")))
def test_every_shipped_config_parses_and_passes_the_checks(config):
    import dataclasses

    from unifiedreward.args import parse_args
    from unifiedreward.preference.arguments import check_arguments, strategy_config

    (args,) = parse_args([PreferenceArguments], ["--config", str(config), "--num_candidates", "6"])
    assert args.num_candidates == 6  # a flag overrides the file
    check_arguments(args)
    assert strategy_config(args) is not None
    assert all(f.metadata.get("help") for f in dataclasses.fields(PreferenceArguments))


@pytest.mark.unit
def test_entry_script_help(capsys):
    script = _load_script("preference_data_construction/video_understanding/infer+sift.py")
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "--num_candidates" in text and "--policy_base_url" in text and "--judge_per_input" in text


@pytest.mark.unit
def test_merge_refuses_shards_with_different_settings_and_policy_failures_are_named(tmp_path):
    data = _data(tmp_path, n=4, missing=())
    _run(_args(tmp_path, data, "s/pairs.json", shard="0/2"))
    _run(_args(tmp_path, data, "s/pairs.json", shard="1/2", temperature=0.9))
    with pytest.raises(DataError, match="temperature"):
        run_preference(_args(tmp_path, data, "s/pairs.json", merge=True))

    class Failing(ScriptedPolicy):
        def sample(self, prompts, config, *, seeds=None):
            return [[Generation(None, error="HTTP 500")] * config.n for _ in prompts]

    summary = _run(_args(tmp_path, data, "f/pairs.json"), Failing())
    assert summary["dropped"] == {"policy_error": 4} and summary["judge_calls"] == 0
    line = json.loads(output_files(tmp_path / "f/pairs.json")["decisions"].read_text().splitlines()[0])
    assert line["policy_errors"][0] == "sample 0: HTTP 500" and line["candidates"] == []
