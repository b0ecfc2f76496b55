"""Benchmark evaluation: loaders on each official format, exact metrics with a scripted judge, resume and shard
merge, and every ``benchmark_evaluation/eval_*.py`` script end to end with the tiny model.

Fixtures are built at runtime in tmp folders, in the formats the benchmarks ship: hub parquet written with
``datasets`` (``Image`` features), UnifiedReward's ``data.json``, the GitHub ``data.jsonl`` and VideoGen-RewardBench's
CSV, with generated images and videos. The scripted backend prefers the red candidate (or the answer saying GOOD),
whatever order it is shown in, so its accuracies are known by hand (computed in the comments).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from unifiedreward.errors import DataError
from unifiedreward.eval.benchmarks import BENCHMARKS, get_benchmark
from unifiedreward.eval.runner import (
    BackendArguments,
    EvalArguments,
    find_data_files,
    load_items,
    predictions_path,
    run_benchmark,
)
from unifiedreward.judge.arguments import JudgeArguments
from unifiedreward.judge.base import Generation
from unifiedreward.protocol import get_template
from unifiedreward.testing.media import make_image, write_video

pytestmark = pytest.mark.smoke

ROOT = Path(__file__).resolve().parents[1]
RED, BLUE = (230, 20, 20), (20, 20, 230)


# ----------------------------------------------------------------------------------------------------- fake judges
def _is_red(pixel: np.ndarray) -> bool:
    r, g, b = (int(x) for x in pixel[:3])
    return r > 150 and g < 100 and b < 100


def _red_position(prompt) -> int | None:
    """1 or 2: the shown position of the red image / video, or ``None`` if neither is red."""
    frames = [np.asarray(v.frames[0]) for v in prompt.videos] or [np.asarray(im) for im in prompt.images]
    for position, frame in enumerate(frames, 1):
        if _is_red(frame[frame.shape[0] // 2, frame.shape[1] // 2]):
            return position
    return None


class SimulatedKill(BaseException):
    """A process being killed: not an ``Exception``, so the judge's per-item error handling does not catch it."""


class RedJudge:
    """Scripted backend: prefers the red image / video, or the answer containing GOOD, in the order shown.

    Args:
        fail_on_call: raise on this (1-based) ``generate`` call, as a killed run stops.
    """

    def __init__(self, fail_on_call: int | None = None):
        self.fail_on_call = fail_on_call
        self.calls = 0
        self.prompts = 0

    def generate(self, prompts, config):
        self.calls += 1
        if self.fail_on_call is not None and self.calls >= self.fail_on_call:
            raise SimulatedKill("simulated kill")
        self.prompts += len(prompts)
        return [Generation(self.answer(prompt)) for prompt in prompts]

    @staticmethod
    def answer(prompt) -> str:
        text = prompt.text()
        if "nonsense" in text:
            return "I cannot tell."
        subject = get_template(prompt.meta["template_id"]).answer.subject
        if subject == "Answer":
            return "Answer 1 is better." if text.find("GOOD") < text.find("BAD") else "Answer 2 is better."
        position = _red_position(prompt)
        if position is None:
            return f"Both {subject.lower()}s are equally good."
        return f"{subject} {position} is better."


class RedScorer(RedJudge):
    """As :class:`RedJudge`, plus answer log-likelihoods for ``--scoring probabilities``: P = (0.7, 0.2, 0.1) for
    (red shown first, second, tie), (0.2, 0.7, 0.1) with red shown second, (0.3, 0.3, 0.4) without red."""

    def score(self, prompts, texts, assistant_prefixes=None):
        rows = []
        for prompt in prompts:
            position = _red_position(prompt)
            probs = {1: (0.7, 0.2, 0.1), 2: (0.2, 0.7, 0.1), None: (0.3, 0.3, 0.4)}[position]
            rows.append(np.log(probs[: len(texts)]))
        return np.array(rows)


# -------------------------------------------------------------------------------------------------------- fixtures
def _hub_parquet(path: Path, columns: dict, image_columns: tuple[str, ...] = ()) -> Path:
    from datasets import Dataset, Features, Image, Value

    features = {}
    for name, values in columns.items():
        if name in image_columns:
            features[name] = Image()
        elif isinstance(values[0], list):
            try:
                from datasets import List
            except ImportError:  # datasets < 4
                from datasets import Sequence as List

            features[name] = List(Value("int64" if isinstance(values[0][0], int) else "string"))
        else:
            features[name] = Value("string")
    path.parent.mkdir(parents=True, exist_ok=True)
    Dataset.from_dict(columns, features=Features(features)).to_parquet(str(path))
    return path


def _solid_video(path: Path, color: tuple[int, int, int]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = np.zeros((4, 32, 32, 3), dtype=np.uint8)
    frames[:] = color
    return write_video(path, frames, fps=4)


# GenAI-Bench image rows: (vote_type, left colour, right colour, caption). Red judge -> verdicts:
#   0 leftvote      red/blue  -> first   correct
#   1 rightvote     blue/red  -> second  correct
#   2 leftvote      red/blue  -> first   correct
#   3 tievote       blue/blue -> tie     correct (tie matches tievote)
#   4 bothbad_vote  red/blue  -> first   wrong
#   5 rightvote     blue/red, caption "nonsense" -> unparsed -> wrong
GENAI_ROWS = [
    ("leftvote", RED, BLUE, "a red cube"),
    ("rightvote", BLUE, RED, "a red ball"),
    ("leftvote", RED, BLUE, "a red car"),
    ("tievote", BLUE, BLUE, "two blue boxes"),
    ("bothbad_vote", RED, BLUE, "a green tree"),
    ("rightvote", BLUE, RED, "nonsense caption"),
]


@pytest.fixture(scope="module")
def genai_image(tmp_path_factory) -> Path:
    """A TIGER-Lab/GenAI-Bench snapshot: image_generation/{test_v1,test}-00000-of-00001.parquet."""
    root = tmp_path_factory.mktemp("genai_bench")
    columns = {
        "prompt": [r[3] for r in GENAI_ROWS],
        "left_model": ["m1"] * 6,
        "left_image": [make_image(32, 32, r[1]) for r in GENAI_ROWS],
        "right_model": ["m2"] * 6,
        "right_image": [make_image(32, 32, r[2]) for r in GENAI_ROWS],
        "vote_type": [r[0] for r in GENAI_ROWS],
    }
    _hub_parquet(root / "image_generation" / "test_v1-00000-of-00001.parquet", columns, ("left_image", "right_image"))
    two = {k: v[:2] for k, v in columns.items()}
    _hub_parquet(root / "image_generation" / "test-00000-of-00001.parquet", two, ("left_image", "right_image"))
    return root


# GenAI-Bench video (UR's data.json): 0 leftvote red/blue -> first, correct; 1 rightvote blue/red -> second, correct;
# 2 tievote blue/blue -> tie, correct; 3 bothbad_vote red/blue -> first, wrong.
GENAI_VIDEO_ROWS = [
    ("leftvote", RED, BLUE),
    ("rightvote", BLUE, RED),
    ("tievote", BLUE, BLUE),
    ("bothbad_vote", RED, BLUE),
]


@pytest.fixture(scope="module")
def genai_video(tmp_path_factory) -> Path:
    """UnifiedReward-Think's GenAI-Bench-Video layout: data.json + videos/<file name>."""
    root = tmp_path_factory.mktemp("genai_video")
    rows = []
    for i, (vote, left, right) in enumerate(GENAI_VIDEO_ROWS):
        _solid_video(root / "videos" / f"{i}_l.mp4", left)
        _solid_video(root / "videos" / f"{i}_r.mp4", right)
        rows.append({"id": i, "prompt": f"video prompt {i}", "video_left": f"{i}_l.mp4", "video_right": f"{i}_r.mp4",
                     "vote_type": vote})  # fmt: skip
    (root / "data.json").write_text(json.dumps(rows))
    return root


# VideoGen-RewardBench: (Overall, VQ, A colour, B colour, prompt). Margins from verdicts:
#   0 A     red/blue  -> first  (+1), gold +1: concordant
#   1 B     blue/red  -> second (-1), gold -1: concordant
#   2 same  blue/blue -> tie     (0), gold  0: tie both
#   3 A     "nonsense" -> unparsed (no margin): wrong
#   4 B     red/blue  -> first  (+1), gold -1: discordant
VIDEOGEN_ROWS = [
    ("A", "A", RED, BLUE, "a dog runs"),
    ("B", "A", BLUE, RED, "a cat jumps"),
    ("same", "A", BLUE, BLUE, "waves"),
    ("A", "A", RED, BLUE, "nonsense prompt"),
    ("B", "A", RED, BLUE, "a bird flies"),
]


@pytest.fixture(scope="module")
def videogen(tmp_path_factory) -> Path:
    """KlingTeam/VideoGen-RewardBench: videogen-rewardbench.csv + the unzipped videos/<model>/..."""
    root = tmp_path_factory.mktemp("videogen")
    header = ["path_A", "path_B", "A_model", "B_model", "prompt", "VQ", "MQ", "TA", "Overall", "fps_A",
              "num_frames_A", "fps_B", "num_frames_B"]  # fmt: skip
    with (root / "videogen-rewardbench.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for i, (overall, vq, a, b, prompt) in enumerate(VIDEOGEN_ROWS):
            _solid_video(root / "videos" / "kling1.5" / f"kling1.5_{i:05d}.mp4", a)
            _solid_video(root / "videos" / "minimax" / f"minimax_{i:05d}.mp4", b)
            writer.writerow([f"./videos/kling1.5/kling1.5_{i:05d}.mp4", f"videos/minimax/minimax_{i:05d}.mp4",
                             "kling1.5", "minimax", prompt, vq, overall, overall, overall, 4, 4, 4, 4])  # fmt: skip
    return root


# VL-RewardBench: (id, human_ranking, response[0], response[1], query). Official category / UR scripts' category:
#   0 hallucination_pair-1 [0,1] GOOD/BAD -> first  = gold: agree   hallucination / general (POVID bug)
#   1 RLAIF-V-2            [0,1] GOOD/BAD -> first  = gold: agree   hallucination / hallucination
#   2 mathverse_3          [1,0] BAD/GOOD -> second = gold: agree   reasoning / reasoning
#   3 wildvision_4         [0,1] BAD/GOOD -> second, gold first: reject   general / general
#   4 svit_5               [0,1] GOOD/BAD -> first  = gold: agree   general (vlfeedback) / general
#   5 mmmu_6               "nonsense" query -> unparsed              reasoning / reasoning
VLRB_ROWS = [
    ("hallucination_pair-1", [0, 1], "GOOD one", "BAD one", "How many giraffes?"),
    ("RLAIF-V-2", [0, 1], "GOOD two", "BAD two", "Describe the image."),
    ("mathverse_3", [1, 0], "BAD three", "GOOD three", "Solve for x."),
    ("wildvision_4", [0, 1], "BAD four", "GOOD four", "What is shown?"),
    ("svit_5", [0, 1], "GOOD five", "BAD five", "What colour is it?"),
    ("mmmu_6", [0, 1], "GOOD six", "BAD six", "nonsense question"),
]


@pytest.fixture(scope="module")
def vlrb(tmp_path_factory) -> Path:
    """MMInstruction/VL-RewardBench snapshot: data/test-00000-of-00001.parquet (``image`` as an Image feature)."""
    root = tmp_path_factory.mktemp("vlrb")
    columns = {
        "id": [r[0] for r in VLRB_ROWS],
        "query": [r[4] for r in VLRB_ROWS],
        "response": [[r[2], r[3]] for r in VLRB_ROWS],
        "image": [make_image(32, 32, (0, 160, 0)) for _ in VLRB_ROWS],
        "human_ranking": [r[1] for r in VLRB_ROWS],
        "models": [["gpt", "gpt"] for _ in VLRB_ROWS],
        "judge": ["human"] * len(VLRB_ROWS),
        "rationale": [""] * len(VLRB_ROWS),
        "query_source": [""] * len(VLRB_ROWS),
        "ground_truth": [""] * len(VLRB_ROWS),
    }
    _hub_parquet(root / "data" / "test-00000-of-00001.parquet", columns, ("image",))
    return root


def eval_args(data: Path, out: Path, **overrides) -> EvalArguments:
    values = {"progress": False, "num_workers": 2, "chunk_size": 2, "num_frames": 2, "plot": False,
              "cache_dir": str(out.parent / f"{out.name}_hf_cache")}  # fmt: skip
    values.update(overrides)
    return EvalArguments(data=str(data), output_dir=str(out), **values)


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"eval_script_{name}", ROOT / "benchmark_evaluation" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --------------------------------------------------------------------------------------------------------- loaders
def test_registry_and_arguments_mirror_the_judge_cli():
    assert set(BENCHMARKS) == {"genai_bench_image", "genai_bench_video", "videogen_rewardbench", "vl_rewardbench"}
    for name in BENCHMARKS:
        bench = get_benchmark(name)
        assert bench.name == name and bench.groups and bench.published
    with pytest.raises(ValueError, match="unknown benchmark"):
        get_benchmark("nope")
    judge_fields = {f.name: f for f in JudgeArguments.__dataclass_fields__.values()}
    for f in BackendArguments.__dataclass_fields__.values():
        assert f.name in judge_fields, f.name
        assert f.default == judge_fields[f.name].default, f.name
        assert f.metadata.get("help"), f.name
    for f in EvalArguments.__dataclass_fields__.values():
        assert f.metadata.get("help"), f.name


def test_configs_parse():
    from unifiedreward.args import parse_args

    configs = sorted((ROOT / "benchmark_evaluation" / "configs").glob("*.yaml"))
    assert {p.stem for p in configs} >= set(BENCHMARKS)
    for path in configs:
        if path.stem in BENCHMARKS:
            args, _backend = parse_args([EvalArguments, BackendArguments], ["--config", str(path)])
            assert args.data and args.output_dir and args.order in ("random", "both")


def test_find_data_files_picks_the_split(genai_image, tmp_path):
    assert [p.name for p in find_data_files(genai_image, "test_v1", "image_generation")] == [
        "test_v1-00000-of-00001.parquet"
    ]
    assert [p.name for p in find_data_files(genai_image, "test", "image_generation")] == [
        "test-00000-of-00001.parquet"
    ]
    with pytest.raises(DataError, match="cannot tell which file"):
        find_data_files(genai_image, "validation", "image_generation")
    with pytest.raises(DataError, match="does not exist"):
        find_data_files(tmp_path / "missing", "test")
    # other layouts: config and split in the file name; a single file whatever its name
    flat = tmp_path / "flat"
    flat.mkdir()
    for name in ("image_generation-test.parquet", "image_generation-test_v1.parquet", "video_generation-test.parquet"):
        (flat / name).touch()
    found = find_data_files(flat, "test", "video_generation")
    assert [p.name for p in found] == ["video_generation-test.parquet"]
    assert [p.name for p in find_data_files(flat, "test_v1", "image_generation")] == [
        "image_generation-test_v1.parquet"
    ]
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "videogen-rewardbench.csv").touch()
    assert [p.name for p in find_data_files(tmp_path / "one", "eval")] == ["videogen-rewardbench.csv"]


def test_genai_image_loader_reads_hub_parquet(genai_image, tmp_path):
    bench = get_benchmark("genai_bench_image")
    items = load_items(bench, eval_args(genai_image, tmp_path / "out"))
    assert [i.id for i in items] == [str(k) for k in range(6)]
    assert [i.gold for i in items] == [r[0] for r in GENAI_ROWS]
    assert [i.gold_pref for i in items] == ["first", "second", "first", "tie", "tie", "second"]
    assert items[0].fields == {"prompt": "a red cube"}
    from unifiedreward.eval.runner import load_media

    image = load_media(items[1].media[1], "image", genai_image, eval_args(genai_image, tmp_path / "out"))
    assert _is_red(np.asarray(image)[16, 16])
    assert len(load_items(bench, eval_args(genai_image, tmp_path / "o2", split="test", limit=1))) == 1


def test_genai_video_loaders_hub_urls_and_ur_json(genai_video, tmp_path):
    bench = get_benchmark("genai_bench_video")
    items = load_items(bench, eval_args(genai_video / "data.json", tmp_path / "out"))
    assert [(i.id, i.gold, i.media) for i in items[:1]] == [("0", "leftvote", ("0_l.mp4", "0_r.mp4"))]
    # the hub's video_generation config: URL strings, files looked up by name in --media_root (never downloaded)
    hub = tmp_path / "hub"
    url = "https://example.org/GenAI-Bench/videos/{}"
    _hub_parquet(hub / "video_generation" / "test_v1-00000-of-00001.parquet", {
        "prompt": ["p0", "p1"], "left_model": ["a", "a"], "right_model": ["b", "b"],
        "left_video": [url.format("0_l.mp4"), url.format("1_l.mp4")],
        "right_video": [url.format("0_r.mp4"), url.format("missing.mp4")], "vote_type": ["leftvote", "rightvote"],
    })  # fmt: skip
    args = eval_args(hub, tmp_path / "run", media_root=str(genai_video))
    results = run_benchmark(bench, args, backend=RedJudge())
    records = read_jsonl(predictions_path(tmp_path / "run"))
    assert [r["status"] for r in records] == ["valid", "media_error"]
    assert "missing.mp4" in records[1]["reason"] and "not found" in records[1]["reason"]
    # media errors are counted and left out of the metrics: 1 of 1 scored items correct
    assert results["counts"]["media_errors"] == 1 and results["counts"]["scored"] == 1
    assert results["metrics"]["official_4way"]["n"] == 1 and results["headline"]["official_4way"] == 100.0
    # a rerun retries the media error (still missing: same outcome, no duplicate lines)
    run_benchmark(bench, args, backend=RedJudge())
    assert len(read_jsonl(predictions_path(tmp_path / "run"))) == 2


def test_media_errors_are_judged_again_once_the_file_exists(genai_video, tmp_path):
    bench = get_benchmark("genai_bench_video")
    media = tmp_path / "media"
    shutil.copytree(genai_video / "videos", media / "videos")
    hub = tmp_path / "hub"
    _hub_parquet(hub / "video_generation" / "test_v1-00000-of-00001.parquet", {
        "prompt": ["p0", "p1"], "left_model": ["a", "a"], "right_model": ["b", "b"],
        "left_video": ["0_l.mp4", "1_l.mp4"], "right_video": ["0_r.mp4", "late.mp4"],
        "vote_type": ["leftvote", "rightvote"],
    })  # fmt: skip
    args = eval_args(hub, tmp_path / "run", media_root=str(media))
    first = run_benchmark(bench, args, backend=RedJudge())
    assert first["counts"]["media_errors"] == 1
    shutil.copy(media / "videos" / "1_r.mp4", media / "videos" / "late.mp4")  # the missing file arrives
    judge = RedJudge()
    again = run_benchmark(bench, args, backend=judge)
    assert judge.prompts == 1  # only the item that failed is judged again
    records = read_jsonl(predictions_path(tmp_path / "run"))
    assert sorted((r["id"], r["status"]) for r in records) == [("0", "valid"), ("1", "valid")]
    assert again["counts"]["media_errors"] == 0 and again["counts"]["scored"] == 2


def test_videogen_and_vlrb_loaders(videogen, vlrb, tmp_path):
    items = load_items(get_benchmark("videogen_rewardbench"), eval_args(videogen, tmp_path / "a"))
    assert [i.gold for i in items] == [r[0] for r in VIDEOGEN_ROWS]
    assert items[0].media == ("./videos/kling1.5/kling1.5_00000.mp4", "videos/minimax/minimax_00000.mp4")
    assert items[0].labels == {"VQ": "A", "MQ": "A", "TA": "A"}
    vl = load_items(get_benchmark("vl_rewardbench"), eval_args(vlrb, tmp_path / "b"))
    assert [(i.id, i.gold, i.category) for i in vl[:3]] == [
        ("hallucination_pair-1", "first", "hallucination"),
        ("RLAIF-V-2", "first", "hallucination"),
        ("mathverse_3", "second", "reasoning"),
    ]
    assert vl[2].fields == {"question": "Solve for x.", "answer1": "BAD three", "answer2": "GOOD three"}
    # the GitHub data.jsonl: image_path instead of image, resolved in --media_root
    make_image(32, 32, (0, 160, 0)).save(tmp_path / "x.png")
    rows = [
        {"id": "RLHF_1", "query": "q", "response": ["GOOD", "BAD"], "image_path": "x.png", "human_ranking": [1, 0]}
    ]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (item,) = load_items(get_benchmark("vl_rewardbench"), eval_args(tmp_path / "data.jsonl", tmp_path / "c"))
    assert (item.gold, item.category, item.media) == ("second", "hallucination", ("x.png",))


def test_malformed_rows_are_data_errors(tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps([{"id": 0, "prompt": "p", "video_left": "a.mp4",
                                                    "video_right": "b.mp4", "vote_type": "leftish"}]))  # fmt: skip
    with pytest.raises(DataError, match="vote_type 'leftish'"):
        load_items(get_benchmark("genai_bench_video"), eval_args(tmp_path / "bad.json", tmp_path / "o"))
    (tmp_path / "v.jsonl").write_text(json.dumps({"id": "a_1", "query": "q", "response": ["x", "y"],
                                                  "image": "i.png", "human_ranking": [0, 0]}) + "\n")  # fmt: skip
    with pytest.raises(DataError, match="human_ranking"):
        load_items(get_benchmark("vl_rewardbench"), eval_args(tmp_path / "v.jsonl", tmp_path / "o"))


# ------------------------------------------------------------------------------------------------- exact metrics
def test_genai_image_exact_metrics_with_random_order(genai_image, tmp_path):
    results = run_benchmark("genai_bench_image", eval_args(genai_image, tmp_path / "out"), backend=RedJudge())
    h = results["headline"]
    assert h["official_4way"] == pytest.approx(100 * 4 / 6, abs=0.01)  # items 0-3 correct
    assert h["tau"] == pytest.approx(100 * 4 / 6, abs=0.01)
    assert h["diff"] == 75.0  # non-tie gold: 0, 1, 2, 5 -> 0, 1, 2 correct
    assert "with_ties" not in h  # only with --scoring probabilities
    m = results["metrics"]
    assert (m["official_4way"]["n_invalid"], m["diff"]["n_invalid"]) == (1, 1)
    assert results["counts"]["invalid"] == 1 and results["counts"]["valid"] == 5
    records = read_jsonl(predictions_path(tmp_path / "out"))
    # seeded order: recorded per item, both orders occur, and verdicts are mapped back (the red one always wins)
    swapped = [r["swapped"] for r in records]
    assert any(swapped) and not all(swapped)
    for record in records:
        expected = ["right_image", "left_image"] if record["swapped"] else ["left_image", "right_image"]
        assert record["shown_order"] == expected
    assert [r["verdict"] for r in records] == ["first", "second", "first", "tie", "first", None]
    assert records[5]["status"] == "invalid" and records[5]["reason"]
    s = results["settings"]
    assert (s["order"], s["seed"], s["scoring"], s["template"], s["split"]) == (
        "random",
        0,
        "generate",
        "T-IG-PAIR-QWEN",
        "test_v1",
    )
    assert "official_4way" in results["metric_definitions"]
    # a different seed shows other orders but gives the same accuracies
    other = run_benchmark("genai_bench_image", eval_args(genai_image, tmp_path / "seed7", seed=7), backend=RedJudge())
    assert other["headline"] == h
    assert [r["swapped"] for r in read_jsonl(predictions_path(tmp_path / "seed7"))] != swapped


def test_genai_image_probabilities_tie_calibration(genai_image, tmp_path):
    # margins P(first) - P(second) in the canonical order: [.5, -.5, .5, 0, .5, -.5] (the scorer ignores "nonsense"),
    # gold [+1, -1, +1, 0, 0, -1]. Ties Matter, epsilon 0: C = 4 (items 0, 1, 2, 5), T_hm = 1 (item 3), T_h = 1
    # (item 4) -> 5/6; epsilon .5: only the 2 gold ties right -> 2/6. VideoAlign: 5/6 too. Without ties: 4/4.
    args = eval_args(genai_image, tmp_path / "out", scoring="probabilities", order="both")
    results = run_benchmark("genai_bench_image", args, backend=RedScorer())
    h, m = results["headline"], results["metrics"]
    assert h["with_ties"] == h["with_ties_videoalign"] == pytest.approx(100 * 5 / 6, abs=0.01)
    assert m["with_ties"]["epsilon"] == 0.0
    assert h["without_ties"] == 100.0
    assert h["tau"] == pytest.approx(100 * 5 / 6, abs=0.01) and h["diff"] == 100.0  # item 4 (bothbad) is wrong
    records = read_jsonl(predictions_path(tmp_path / "out"))
    assert all(r["shown_order"] == "both" and r["consistent"] for r in records)
    assert [round(r["margin"], 6) for r in records] == [0.5, -0.5, 0.5, 0.0, 0.5, -0.5]


def test_videogen_exact_metrics(videogen, tmp_path):
    results = run_benchmark("videogen_rewardbench", eval_args(videogen, tmp_path / "out"), backend=RedJudge())
    h = results["headline"]
    # w/ ties (Ties Matter): epsilon 0 -> C 2 + T_hm 1 = 3 of 5 (the unparsed one is wrong); epsilon 1 -> 1 of 5.
    assert h["with_ties"] == 60.0
    # VideoAlign: starts at epsilon -1, moves item 2 (m = 0) to a tie first -> 3 of 4 parsed -> 3 of 5.
    assert h["with_ties_videoalign"] == 60.0
    assert h["without_ties"] == 50.0  # non-tie gold 0, 1, 3, 4: C = 2 (0, 1)
    assert h["tau"] == 60.0 and h["diff"] == 50.0
    # VQ is "A" everywhere: margins [+1, -1, 0, -, +1] -> w/o ties C = 2 of 5
    assert h["VQ_without_ties"] == 40.0
    assert results["metrics"]["with_ties"]["n_invalid"] == 1
    assert results["settings"]["num_frames"] == 2


def test_vlrb_exact_metrics_official_and_ur(vlrb, tmp_path):
    results = run_benchmark("vl_rewardbench", eval_args(vlrb, tmp_path / "out"), backend=RedJudge())
    h = results["headline"]
    # official (unparsed excluded): general 3,4 -> 1/2; hallucination 0,1 -> 2/2; reasoning 2 (6 excluded) -> 1/1
    assert (h["general"], h["hallucination"], h["reasoning"]) == (50.0, 100.0, 100.0)
    assert h["overall"] == 80.0 and h["macro"] == pytest.approx(83.33, abs=0.01)
    # UR scripts: POVID item 0 in general, unparsed wrong: general 0,3,4 -> 2/3; hallucination 1/1; reasoning 1/2
    assert h["ur_general"] == pytest.approx(66.67, abs=0.01) and h["ur_hallucination"] == 100.0
    assert h["ur_reasoning"] == 50.0 and h["ur_overall"] == pytest.approx(66.67, abs=0.01)
    assert h["ur_macro"] == pytest.approx(72.22, abs=0.01)
    assert results["metrics"]["official"]["overall"]["n_invalid"] == 1
    assert results["settings"]["template"] == "T-IU-PAIR-QWEN"


# ---------------------------------------------------------------------------------------------- resume and shards
def test_resume_after_interruption_equals_one_run(genai_image, tmp_path):
    bench = "genai_bench_image"
    single = run_benchmark(bench, eval_args(genai_image, tmp_path / "single"), backend=RedJudge())
    args = eval_args(genai_image, tmp_path / "resumed")
    with pytest.raises(SimulatedKill, match="simulated kill"):
        run_benchmark(bench, args, backend=RedJudge(fail_on_call=2))  # chunk 1 (2 items) written, then killed
    path = predictions_path(tmp_path / "resumed")
    assert len(read_jsonl(path)) == 2
    with path.open("a") as handle:
        handle.write('{"id": "2", "gold": "left')  # a kill in the middle of a write
    judge = RedJudge()
    resumed = run_benchmark(bench, args, backend=judge)
    assert judge.prompts == 4  # only the 4 missing items were judged
    assert read_jsonl(path) == read_jsonl(predictions_path(tmp_path / "single"))
    assert (resumed["metrics"], resumed["counts"]) == (single["metrics"], single["counts"])
    # a rerun with other settings is refused
    with pytest.raises(DataError, match="seed"):
        run_benchmark(bench, eval_args(genai_image, tmp_path / "resumed", seed=1), backend=RedJudge())


def test_two_shards_and_merge_equal_one_run(vlrb, tmp_path):
    bench = "vl_rewardbench"
    single = run_benchmark(bench, eval_args(vlrb, tmp_path / "single", plot=True), backend=RedJudge())
    out = tmp_path / "sharded"
    for shard in ("0/2", "1/2"):
        assert run_benchmark(bench, eval_args(vlrb, out, shard=shard), backend=RedJudge()) is None
    assert [r["id"] for r in read_jsonl(out / "predictions.shard-1-of-2.jsonl")] == ["RLAIF-V-2", "wildvision_4",
                                                                                     "mmmu_6"]  # fmt: skip
    merged = run_benchmark(bench, eval_args(vlrb, out, merge=True, plot=True))
    assert read_jsonl(predictions_path(out)) == read_jsonl(predictions_path(tmp_path / "single"))
    assert (merged["metrics"], merged["counts"], merged["settings"]) == (
        single["metrics"], single["counts"], single["settings"]
    )  # fmt: skip
    assert (out / "results.png").stat().st_size > 1000 and (out / "results.md").exists()


def test_merge_refuses_missing_shards(vlrb, tmp_path):
    out = tmp_path / "out"
    run_benchmark("vl_rewardbench", eval_args(vlrb, out, shard="0/3"), backend=RedJudge())
    with pytest.raises(DataError, match=r"shard\(s\) \[1, 2\]"):
        run_benchmark("vl_rewardbench", eval_args(vlrb, out, merge=True))


# ------------------------------------------------------------------------------------------- scripts end to end
@pytest.mark.parametrize(
    ("script", "fixture", "data", "flags"),
    [
        ("eval_genai_bench_image", "genai_image", "", ["--scoring", "probabilities"]),
        ("eval_genai_bench_video", "genai_video", "data.json", ["--max_new_tokens", "4"]),
        ("eval_videogen_rewardbench", "videogen", "", ["--scoring", "probabilities", "--order", "both"]),
        ("eval_vl_rewardbench", "vl_rewardbench_data", "", ["--max_new_tokens", "4", "--limit", "4"]),
    ],
)
def test_eval_scripts_end_to_end_with_tiny_model(script, fixture, data, flags, request, tiny_models, tmp_path):
    root = request.getfixturevalue("vlrb" if fixture == "vl_rewardbench_data" else fixture)
    out = tmp_path / "out"
    argv = ["--data", str(root / data), "--output_dir", str(out), "--model", str(tiny_models.path("qwen2_5_vl")),
            "--num_frames", "2", "--no_progress", "--cache_dir", str(tmp_path / "cache"), *flags]  # fmt: skip
    assert load_script(script).main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["settings"]["model"] == str(tiny_models.path("qwen2_5_vl"))
    assert results["settings"]["family"] == "qwen" and results["settings"]["template"].startswith("T-")
    assert results["counts"]["items"] == (4 if "--limit" in flags else len(read_jsonl(out / "predictions.jsonl")))
    if "probabilities" in flags:
        assert results["counts"]["valid"] == results["counts"]["items"] - results["counts"]["inconsistent"]
        assert "with_ties" in results["headline"]
    for value in results["headline"].values():
        assert value is None or 0.0 <= value <= 100.0 and not math.isnan(value)
    md = (out / "results.md").read_text()
    assert "**ours:" in md and "UnifiedReward" in md and "| source |" in md
    assert (out / "results.png").read_bytes()[:4] == b"\x89PNG"


def test_script_reports_errors(tmp_path, capsys):
    argv = ["--data", str(tmp_path / "nothing"), "--output_dir", str(tmp_path / "o"), "--model", "x"]
    assert load_script("eval_vl_rewardbench").main(argv) == 1
    assert "does not exist" in capsys.readouterr().err
