"""``unifiedreward judge``: input validation, output records, resume, shards, merge, and real backends end to end.

Bookkeeping tests use a scripted fake backend whose answer depends only on the prompt, so any two runs over the
same requests produce the same records; one run uses the tiny transformers model and one the OpenAI stub server.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from openai_stub import StubOpenAIServer, request_text

from unifiedreward.args import parse_args
from unifiedreward.chat import ChatPrompt
from unifiedreward.cli import main as cli_main
from unifiedreward.errors import DataError, SettingsError, UnifiedRewardError
from unifiedreward.io import parse_shard, read_jsonl, settings_path
from unifiedreward.judge.arguments import JudgeArguments, judge_options
from unifiedreward.judge.base import Generation
from unifiedreward.judge.cli import main as judge_main
from unifiedreward.judge.cli import merge_outputs, run_judge
from unifiedreward.judge.requests import InputRecord
from unifiedreward.judge.results import RECORD_KEYS, result_record
from unifiedreward.judge.summary import summary_path
from unifiedreward.protocol import PairwiseResult, Verdict, get_template
from unifiedreward.testing.media import make_frames, make_image, write_garbage, write_video

pytestmark = pytest.mark.smoke


class SimulatedKill(BaseException):
    """Stops a run like Ctrl-C or a kill would (a ``BaseException``: the judge does not turn it into a record)."""


class FakeBackend:
    """Answers from the prompt text alone (a verdict, a score, or nonsense for prompts mentioning "nonsense").

    Args:
        fail_on_call: raise on this (1-based) ``generate`` call, as a run killed mid-way would stop.
    """

    def __init__(self, fail_on_call: int | None = None):
        self.fail_on_call = fail_on_call
        self.calls = 0
        self.prompts: list[ChatPrompt] = []

    def generate(self, prompts, config):
        self.calls += 1
        if self.fail_on_call is not None and self.calls >= self.fail_on_call:
            raise SimulatedKill("simulated kill")
        self.prompts.extend(prompts)
        return [Generation(self.answer(prompt)) for prompt in prompts]

    @staticmethod
    def answer(prompt: ChatPrompt) -> str:
        text = prompt.text()
        if "nonsense" in text:
            return "I cannot tell."
        digest = zlib.crc32(text.encode())
        if "POINT" in prompt.meta["template_id"]:
            return f"Some analysis.\nFinal Score: {1 + digest % 5}"
        subject = get_template(prompt.meta["template_id"]).answer.subject or "Image"
        return f"{subject} {1 + digest % 2} is better."


class NoBackend:
    """A backend that must never be reached."""

    def generate(self, prompts, config):
        raise AssertionError("the backend was called")


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli_media")
    make_image(48, 32, (200, 0, 0), shape="circle").save(root / "red.png")
    make_image(32, 48, (0, 0, 200), shape="square").save(root / "blue.png")
    write_garbage(root / "corrupt.png", nbytes=256)
    write_video(root / "a.mp4", make_frames(8, 32, 32, seed=1), fps=8)
    write_video(root / "b.mp4", make_frames(8, 32, 32, seed=2), fps=8)
    return root


def make_requests(n: int, *, bad_media: tuple[int, ...] = ()) -> list[dict]:
    """``n`` image requests alternating pair rank and point score, with different captions."""
    rows = []
    for i in range(n):
        images = ["red.png", "blue.png"] if i % 2 == 0 else ["red.png"]
        if i in bad_media:
            images[0] = "corrupt.png"
        mode = "pair_rank" if i % 2 == 0 else "point_score"
        rows.append({"id": f"r{i}", "task": "image_generation", "mode": mode, "images": images,
                     "prompt": f"caption number {i}"})  # fmt: skip
    return rows


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


def make_args(input: Path, output: Path, **overrides) -> JudgeArguments:
    values = {"media_root": None, "chunk_size": 3, "progress": False, "num_workers": 2}
    values.update(overrides)
    return JudgeArguments(input=str(input), output=str(output), **values)


def records_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def by_id(records: list[dict]) -> list[dict]:
    return sorted(records, key=lambda record: str(record["id"]))


# ------------------------------------------------------------------------------------------------- output format
def test_output_records_invalid_media_and_summary(tmp_path, media):
    rows = make_requests(4, bad_media=(2,))
    rows.append(
        {
            "id": 99,
            "task": "image_understanding",
            "mode": "pair_rank",
            "images": ["blue.png"],
            "question": "What colour?",
            "answer1": "blue",
            "answer2": "red",
            "meta": {"gold": "first"},
        }
    )
    rows.append(
        {"id": "missing", "task": "image_generation", "mode": "point_score", "images": ["nope.png"], "prompt": "x"}
    )
    rows.append({"id": "junk", "task": "image_generation", "mode": "point_score", "images": ["red.png"],
                 "prompt": "nonsense"})  # fmt: skip
    source = write_jsonl(tmp_path / "requests.jsonl", rows)  # not beside the media: --media_root finds them
    output = tmp_path / "out" / "results.jsonl"
    backend = FakeBackend()
    summary = run_judge(make_args(source, output, media_root=str(media)), backend=backend)

    records = records_of(output)
    assert [r["id"] for r in records] == ["r0", "r1", "r2", "r3", 99, "missing", "junk"]
    for record in records:
        assert tuple(record)[: len(RECORD_KEYS)] == RECORD_KEYS
        assert record["status"] in ("valid", "invalid")
    r0, r1, r2, r3, qa, missing, junk = records
    assert r0["template"] == "T-IG-PAIR-QWEN" and r0["verdict"] in ("first", "second") and r0["score"] is None
    assert r0["status"] == "valid" and r0["reason"] is None and r0["raw"].startswith("Image ")
    assert "dimension_scores" in r0 and "think" in r0  # every result field is written
    assert r1["template"] == "T-IG-POINT" and r1["verdict"] is None and isinstance(r1["score"], float)
    assert r1["score_range"] == [1, 5]
    assert qa["template"] == "T-IU-PAIR-QWEN" and qa["meta"] == {"gold": "first"} and qa["status"] == "valid"
    # media that fail to load: invalid, the file named, no verdict or score, and never sent to the backend
    assert r2["status"] == "invalid" and r2["verdict"] is None and r2["raw"] == ""
    assert r2["reason"].startswith("media error:") and "corrupt.png" in r2["reason"]
    assert missing["status"] == "invalid" and "nope.png" in missing["reason"] and missing["score"] is None
    assert junk["status"] == "invalid" and junk["reason"] and junk["raw"] == "I cannot tell."
    assert len(backend.prompts) == 5

    assert summary == json.loads(summary_path(output).read_text())
    assert summary["judged"] == 7 and summary["skipped_done"] == 0 and summary["family"] == "qwen"
    results = summary["results"]
    assert (results["total"], results["valid"], results["invalid"]) == (7, 4, 3)
    assert sum(results["verdicts"].values()) == 2  # r0 and the understanding pair
    point = results["by_task_mode"]["image_generation/point_score"]
    assert point["total"] == 4 and point["mean_score"] == pytest.approx((r1["score"] + r3["score"]) / 2)
    assert results["invalid_reasons"][0]["reason"] == "media error" and results["invalid_reasons"][0]["count"] == 2
    assert summary["wall_s"] >= summary["judge_s"] > 0 and summary["requests_per_s"] > 0

    # everything done: a rerun loads nothing, judges nothing, and keeps the file
    again = run_judge(make_args(source, output, media_root=str(media)), backend=NoBackend())
    assert (again["judged"], again["skipped_done"]) == (0, 7) and records_of(output) == records


def test_result_record_serializes_every_result_field():
    result = PairwiseResult(
        Verdict.FIRST,
        "Image 1 is better.",
        dimension_scores={"alignment": (4.0, 2.0)},
        scores=(4.0, 2.0),
        probabilities={Verdict.FIRST: 0.75, Verdict.SECOND: 0.25},
    )
    record = InputRecord(line=1, index=0, id="a", task="image_generation", mode="pair_rank", meta=[1, 2])
    out = json.loads(json.dumps(result_record(record, "T-IG-PAIR-QWEN", result)))
    assert out["verdict"] == "first" and out["status"] == "valid" and out["meta"] == [1, 2]
    assert out["probabilities"] == {"first": 0.75, "second": 0.25} and out["scores"] == [4.0, 2.0]
    assert out["dimension_scores"] == {"alignment": [4.0, 2.0]}
    assert {f.name for f in dataclasses.fields(PairwiseResult)} <= set(out)  # new result fields appear by themselves


# ------------------------------------------------------------------------------------------------ input validation
@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"task": "image_generation", "mode": "point_score", "images": ["red.png"], "prompt": "x"}', "missing 'id'"),
        ('{"id": "x", "mode": "point_score", "images": ["red.png"], "prompt": "x"}', "missing 'task'"),
        ('{"id": "r0", "task": "image_generation", "mode": "point_score", "images": ["red.png"], "prompt": "x"}',
         "duplicate id 'r0' (first on line 1)"),
        ('{"id": "x", "task": "image_generation", "mode": "best_of", "images": ["red.png"], "prompt": "x"}',
         "unknown mode 'best_of'"),
        ('{"id": "x", "task": "image_generation", "mode": "point_score", "images": "red.png", "prompt": "x"}',
         "'images' must be a list"),
        ('{"id": "x", "task": "image_generation", "mode": "point_score", "images": ["red.png"], "caption_": "x"}',
         "unexpected 'caption_'"),
        ('{"id": "x", "task": "image_generation", "mode": "pair_rank", "images": ["red.png"], "prompt": "x"}',
         "takes 2 image(s) and 0 video(s); the line gives 1 and 0"),
        ('{"id": "x", "task": "image_generation", "mode": "pair_rank", "template": "T-NOPE", "prompt": "x"}',
         "unknown template id 'T-NOPE'"),
    ],
)  # fmt: skip
def test_malformed_line_fails_before_judging(tmp_path, media, line, message):
    rows = [json.dumps(make_requests(1)[0]), "", line]
    source = write_jsonl(tmp_path / "requests.jsonl", rows)
    output = tmp_path / "results.jsonl"
    with pytest.raises(DataError) as caught:
        run_judge(make_args(source, output, media_root=str(media)), backend=NoBackend())
    assert re.search(rf"requests\.jsonl:3: .*{re.escape(message)}", str(caught.value)), str(caught.value)
    assert not output.exists()


def test_cli_reports_input_errors_with_exit_status_1(tmp_path, capsys):
    source = write_jsonl(tmp_path / "requests.jsonl", ['{"id": 1}'])
    code = judge_main(["--input", str(source), "--output", str(tmp_path / "o.jsonl"), "--model", "unused"])
    assert code == 1
    err = capsys.readouterr().err
    assert "requests.jsonl:1: missing 'task'" in err and "requests.jsonl:1: missing 'mode'" in err


@pytest.mark.parametrize(
    ("flag", "message"), [({"video_fps": 0.0}, "--video_fps"), ({"max_pixels": 0}, "--max_pixels")]
)
def test_bad_media_flags_fail_before_anything_is_written(tmp_path, media, flag, message):
    source = write_jsonl(media / "flags.jsonl", make_requests(2))
    output = tmp_path / "results.jsonl"
    with pytest.raises(ValueError, match=message):
        run_judge(make_args(source, output, **flag), backend=NoBackend())
    assert not output.exists() and not settings_path(output).exists()


def test_media_are_found_by_name_under_the_media_root(tmp_path, media):
    """Media go through ``unifiedreward.media.resolve_media``: a path that does not exist as written is looked up by
    file name in the root's ``images/`` folder, like the benchmark runner does."""
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "only_here.png").write_bytes((media / "red.png").read_bytes())
    row = {"id": "a", "task": "image_generation", "mode": "point_score", "images": ["elsewhere/only_here.png"],
           "prompt": "a red circle"}  # fmt: skip
    source = write_jsonl(tmp_path / "requests.jsonl", [row])
    run_judge(make_args(source, tmp_path / "results.jsonl"), backend=FakeBackend())
    assert records_of(tmp_path / "results.jsonl")[0]["status"] == "valid"


# ------------------------------------------------------------------------------------------------------- resume
def test_resume_after_interruption_equals_uninterrupted_run(tmp_path, media):
    source = write_jsonl(media / "resume.jsonl", make_requests(10, bad_media=(4,)))
    reference = tmp_path / "reference.jsonl"
    run_judge(make_args(source, reference), backend=FakeBackend())

    output = tmp_path / "resumed.jsonl"
    with pytest.raises(SimulatedKill, match="simulated kill"):
        run_judge(make_args(source, output), backend=FakeBackend(fail_on_call=2))
    assert [r["id"] for r in records_of(output)] == ["r0", "r1", "r2"]  # the first chunk survived the kill

    backend = FakeBackend()
    summary = run_judge(make_args(source, output), backend=backend)
    assert (summary["skipped_done"], summary["judged"]) == (3, 7)
    assert len(backend.prompts) == 6  # 7 judged, one of them with unreadable media
    assert by_id(records_of(output)) == by_id(records_of(reference))
    reference_results = json.loads(summary_path(reference).read_text())["results"]
    assert summary["results"] == reference_results


def test_truncated_last_line_is_dropped_and_judged_again(tmp_path, media, caplog):
    source = write_jsonl(media / "truncate.jsonl", make_requests(5))
    output = tmp_path / "results.jsonl"
    run_judge(make_args(source, output), backend=FakeBackend())
    complete = records_of(output)
    lines = output.read_text().splitlines(keepends=True)
    output.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])  # killed while writing

    with pytest.raises(DataError, match="interrupted write"):
        read_jsonl(output)
    backend = FakeBackend()
    with caplog.at_level(logging.WARNING, logger="unifiedreward.io.files"):
        summary = run_judge(make_args(source, output), backend=backend)
    assert "line 5 is incomplete" in caplog.text
    assert (summary["skipped_done"], summary["judged"], len(backend.prompts)) == (4, 1, 1)
    assert records_of(output) == complete

    # damage before the last line is not guessed at
    output.write_text(output.read_text().replace('"r1"', '"r1', 1))
    with pytest.raises(DataError, match=r"results.jsonl:2: not a JSON object"):
        run_judge(make_args(source, output), backend=NoBackend())


# --------------------------------------------------------------------------------------------- shards and merge
def test_shards_cover_every_id_once_and_merge_restores_input_order(tmp_path, media):
    rows = make_requests(11, bad_media=(5,))
    rows[3]["id"] = 3  # integer ids work too
    source = write_jsonl(media / "shards.jsonl", rows)
    reference = tmp_path / "reference.jsonl"
    run_judge(make_args(source, reference), backend=FakeBackend())

    shards = []
    for index in range(4):
        shard = tmp_path / f"out.shard{index}.jsonl"
        summary = run_judge(make_args(source, shard, shard=f"{index}/4"), backend=FakeBackend())
        assert summary["requests_in_input"] == 11 and summary["requests_in_shard"] == len(range(index, 11, 4))
        shards.append(shard)
    ids = [record["id"] for shard in shards for record in records_of(shard)]
    assert sorted(map(str, ids)) == sorted(str(row["id"]) for row in rows) and len(ids) == len(set(ids)) == 11

    # an output of another shard is refused, not silently mixed
    with pytest.raises(SettingsError, match="shard: '0/4' -> '1/4'"):
        run_judge(make_args(source, shards[0], shard="1/4"), backend=NoBackend())
    # without its settings file (an output of an older version), the ids give it away
    settings_file = settings_path(shards[0])
    stored = settings_file.read_bytes()
    settings_file.unlink()
    with pytest.raises(DataError, match="not among the 3 items of this run: wrong --output, --input or --shard"):
        run_judge(make_args(source, shards[0], shard="1/4"), backend=NoBackend())
    assert not settings_file.exists()  # nothing written for a refused output
    settings_file.write_bytes(stored)

    merged = tmp_path / "merged.jsonl"
    summary = merge_outputs(shards, merged, source)
    assert records_of(merged) == records_of(reference)  # same records, in input order
    assert summary["missing"] == 0 and summary["results"] == json.loads(summary_path(reference).read_text())["results"]

    with pytest.raises(DataError, match="already in"):
        merge_outputs([*shards, shards[2]], tmp_path / "dup.jsonl", source)
    with pytest.raises(DataError, match=r"2 of 11 id\(s\) are in none"):
        merge_outputs(shards[:3], tmp_path / "partial.jsonl", source)
    assert not (tmp_path / "dup.jsonl").exists() and not (tmp_path / "partial.jsonl").exists()
    partial = merge_outputs(shards[:3], tmp_path / "partial.jsonl", source, allow_missing=True)
    assert partial["missing"] == 2 and len(records_of(tmp_path / "partial.jsonl")) == 9
    other = write_jsonl(tmp_path / "other.jsonl", make_requests(3))
    with pytest.raises(DataError, match="is not among the expected ids"):
        merge_outputs(shards, tmp_path / "foreign.jsonl", other)

    # the CLI form
    assert (
        judge_main(["--merge", *map(str, shards), "--output", str(tmp_path / "cli.jsonl"), "--input", str(source)])
        == 0
    )
    assert records_of(tmp_path / "cli.jsonl") == records_of(reference)


# ---------------------------------------------------------------------------------------------------- settings
@pytest.mark.parametrize(
    ("change", "listed"),
    [
        ({"model": "other-checkpoint"}, "model: 'ckpt-a' -> 'other-checkpoint'"),
        ({"order": "random"}, "order: 'as_given' -> 'random'"),
        ({"scoring": "probabilities"}, "scoring: 'generate' -> 'probabilities'"),
        ({"version": "2.0"}, "version: '1.0' -> '2.0'"),
        ({"family": "llava"}, "family: 'qwen' -> 'llava'"),
        ({"seed": 1}, "seed: 0 -> 1"),
        ({"max_new_tokens": 64}, "max_new_tokens: 512 -> 64"),
        ({"num_frames": 4}, "num_frames: 8 -> 4"),
        ({"video_fps": 2.0}, "video_fps: None -> 2.0"),
        ({"max_pixels": 4096}, "max_pixels: None -> 4096"),
        ({"shard": "0/1"}, "shard: None -> '0/1'"),
    ],
)
def test_resume_with_other_settings_is_refused(tmp_path, media, capsys, change, listed):
    source = write_jsonl(media / "settings.jsonl", make_requests(4))
    output = tmp_path / "results.jsonl"
    with pytest.raises(SimulatedKill):
        run_judge(make_args(source, output, model="ckpt-a"), backend=FakeBackend(fail_on_call=2))
    before = output.read_bytes()
    flags = {"model": "ckpt-a", "family": "qwen", **change}
    with pytest.raises(SettingsError) as caught:
        run_judge(make_args(source, output, **flags), backend=NoBackend())
    assert listed in str(caught.value) and "--overwrite" in str(caught.value)
    assert list(caught.value.changed) == list(change)
    assert output.read_bytes() == before  # refused before anything was touched
    argv = ["--input", str(source), "--output", str(output), "--no_progress"]
    assert judge_main(argv + [f"--{name}={value}" for name, value in flags.items()]) == 1  # before loading a model
    assert listed in capsys.readouterr().err
    assert output.read_bytes() == before


def test_resume_with_same_settings_and_overwrite(tmp_path, media):
    source = write_jsonl(media / "settings_same.jsonl", make_requests(6))
    reference = tmp_path / "reference.jsonl"
    run_judge(make_args(source, reference, model="ckpt-a", order="random", seed=3), backend=FakeBackend())
    output = tmp_path / "results.jsonl"
    with pytest.raises(SimulatedKill):
        run_judge(make_args(source, output, model="ckpt-a", order="random", seed=3), backend=FakeBackend(2))
    stored = json.loads(settings_path(output).read_text())
    assert stored["model"] == "ckpt-a" and stored["input"] == str(source.resolve()) and stored["family"] == "qwen"
    # the same settings resume; batch size, chunking, workers and the media root may change
    same = make_args(source, output, model="ckpt-a", order="random", seed=3, chunk_size=4, num_workers=0,
                     batch_size=2, media_root=str(media))  # fmt: skip
    summary = run_judge(same, backend=FakeBackend())
    assert (summary["skipped_done"], summary["judged"]) == (3, 3)
    assert output.read_bytes() == reference.read_bytes()
    # another input file with the same requests is another run
    copy = write_jsonl(media / "settings_copy.jsonl", make_requests(6))
    with pytest.raises(SettingsError, match=r"input: '.*settings_same\.jsonl' -> '.*settings_copy\.jsonl'"):
        run_judge(make_args(copy, output, model="ckpt-a", order="random", seed=3), backend=NoBackend())
    # --overwrite starts over with the new settings
    backend = FakeBackend()
    summary = run_judge(make_args(source, output, model="ckpt-b", overwrite=True), backend=backend)
    assert (summary["skipped_done"], summary["judged"], len(backend.prompts)) == (0, 6, 6)
    assert json.loads(settings_path(output).read_text())["model"] == "ckpt-b"


def test_merge_refuses_shards_with_other_settings(tmp_path, media):
    source = write_jsonl(media / "merge_settings.jsonl", make_requests(4))
    first, second = tmp_path / "s0.jsonl", tmp_path / "s1.jsonl"
    run_judge(make_args(source, first, shard="0/2"), backend=FakeBackend())
    run_judge(make_args(source, second, shard="1/2", version="2.0"), backend=FakeBackend())
    with pytest.raises(SettingsError, match=r"version: '1.0' in .*s0\.jsonl, '2.0' in .*s1\.jsonl"):
        merge_outputs([first, second], tmp_path / "merged.jsonl", source)
    assert not (tmp_path / "merged.jsonl").exists()
    run_judge(make_args(source, second, shard="1/2", overwrite=True), backend=FakeBackend())
    merged = tmp_path / "merged.jsonl"
    merge_outputs([first, second], merged, source)
    assert json.loads(settings_path(merged).read_text())["shard"] is None
    summary = run_judge(make_args(source, merged), backend=NoBackend())  # the merged file resumes unsharded
    assert (summary["skipped_done"], summary["judged"]) == (4, 0)


def test_parse_shard():
    assert parse_shard("0/4") == (0, 4) and parse_shard(" 3 / 4 ") == (3, 4) and parse_shard(None) is None
    for bad in ("4/4", "1/0", "a/b", "1"):
        with pytest.raises(ValueError):
            parse_shard(bad)


# ------------------------------------------------------------------------------------------- judge options
def test_judge_options_are_guarded_by_the_signature():
    class OldJudge:
        def __init__(self, backend, *, family="qwen", version="1.0", generation=None): ...

    class NewJudge:
        def __init__(self, backend, *, order="as_given", seed=0, scoring="generate"): ...

    defaults = JudgeArguments(input="i", output="o")
    assert judge_options(defaults, OldJudge) == {}
    with pytest.raises(UnifiedRewardError, match="--order both is not supported"):
        judge_options(JudgeArguments(input="i", output="o", order="both"), OldJudge)
    asked = JudgeArguments(input="i", output="o", order="random", seed=3, scoring="probabilities")
    assert judge_options(asked, NewJudge) == {"order": "random", "seed": 3, "scoring": "probabilities"}


def test_random_order_is_reproducible_across_resume(tmp_path, media):
    """The coin flip of --order random must depend on (seed, request), not on how the run was chunked or resumed."""
    source = write_jsonl(media / "order.jsonl", make_requests(8))
    reference = tmp_path / "reference.jsonl"
    run_judge(make_args(source, reference, order="random", seed=5), backend=FakeBackend())
    output = tmp_path / "resumed.jsonl"
    with pytest.raises(SimulatedKill):
        run_judge(make_args(source, output, order="random", seed=5, chunk_size=2), backend=FakeBackend(2))
    run_judge(make_args(source, output, order="random", seed=5, chunk_size=5), backend=FakeBackend())
    records = records_of(output)
    assert by_id(records) == by_id(records_of(reference))
    assert all("swapped" in record for record in records if record["mode"] == "pair_rank")


def test_both_orders_adds_consistency(tmp_path, media):
    source = write_jsonl(media / "both.jsonl", make_requests(4))
    output = tmp_path / "results.jsonl"
    summary = run_judge(make_args(source, output, order="both"), backend=FakeBackend())
    pairs = [record for record in records_of(output) if record["mode"] == "pair_rank"]
    assert pairs and all("consistent" in record for record in pairs)
    results = summary["results"]
    assert sum(results["statuses"].values()) == results["total"] == 4
    assert results["valid"] + results["invalid"] == 4


# --------------------------------------------------------------------------------------------- real backends
def test_tiny_transformers_model_end_to_end(tmp_path, media, tiny_models):
    rows = [
        {"id": "ig-pair", "task": "image_generation", "mode": "pair_rank", "images": ["red.png", "blue.png"],
         "prompt": "a red circle"},
        {"id": "ig-point", "task": "image_generation", "mode": "point_score", "images": ["red.png"],
         "prompt": "a red circle"},
        {"id": "vg-pair", "task": "video_generation", "mode": "pair_rank", "videos": ["a.mp4", "b.mp4"],
         "prompt": "a square moving", "num_frames": 4},
        {"id": "bad", "task": "image_generation", "mode": "point_score", "images": ["corrupt.png"], "prompt": "x"},
    ]  # fmt: skip
    source = write_jsonl(media / "tiny.jsonl", rows)
    output = tmp_path / "results.jsonl"
    model = tiny_models.path("qwen2_5_vl")
    argv = ["--input", str(source), "--output", str(output), "--backend", "transformers", "--model", str(model),
            "--max_new_tokens", "4", "--batch_size", "2", "--chunk_size", "2", "--no_progress"]  # fmt: skip
    assert judge_main(argv) == 0
    records = {record["id"]: record for record in records_of(output)}
    assert list(records) == ["ig-pair", "ig-point", "vg-pair", "bad"]
    assert [records[i]["template"] for i in records] == [
        "T-IG-PAIR-QWEN",
        "T-IG-POINT",
        "T-VG-PAIR-QWEN",
        "T-IG-POINT",
    ]
    for name in ("ig-pair", "ig-point", "vg-pair"):  # a random model: any status, but a real answer and a reason
        record = records[name]
        assert record["status"] in ("valid", "invalid") and isinstance(record["raw"], str)
        assert record["status"] == "valid" or record["reason"]
    assert records["bad"]["status"] == "invalid" and "corrupt.png" in records["bad"]["reason"]
    summary = json.loads(summary_path(output).read_text())
    assert summary["family"] == "qwen" and summary["judged"] == 4 and summary["results"]["total"] == 4


def test_openai_backend_end_to_end(tmp_path, media):
    def reply(body, index):
        text = request_text(body)
        return "Final Score: 4" if "Final Score" in text else "After comparing: **Image 2 is better.**"

    rows = make_requests(3)
    source = write_jsonl(media / "openai.jsonl", rows)
    output = tmp_path / "results.jsonl"
    with StubOpenAIServer(reply=reply) as server:
        argv = ["--input", str(source), "--output", str(output), "--backend", "openai", "--base_url",
                server.base_url, "--model", server.model, "--max_concurrency", "2", "--timeout", "10",
                "--max_new_tokens", "64", "--no_progress"]  # fmt: skip
        assert judge_main(argv) == 0
        assert server.model_requests == 1 and len(server.requests) == 3  # the health check, then one per request
        assert all(body["temperature"] == 0 and body["max_tokens"] == 64 for body in server.requests)
    records = records_of(output)
    assert [(r["id"], r["status"], r["verdict"], r["score"]) for r in records] == [
        ("r0", "valid", "second", None),
        ("r1", "valid", None, 4.0),
        ("r2", "valid", "second", None),
    ]
    assert records[0]["raw"] == "After comparing: **Image 2 is better.**"


# ------------------------------------------------------------------------------------------------------ the CLI
HELP_FLAGS = (
    "--input --output --media_root --chunk_size --shard --overwrite --merge --allow_missing --backend --model --dtype "
    "--device_map --attn_implementation --batch_size --base_url --api_key --max_concurrency --timeout --max_retries "
    "--family --version --max_new_tokens --order --seed --scoring --num_frames --video_fps --max_pixels --config"
)


def test_help_and_config(tmp_path, capsys):
    result = subprocess.run(
        [sys.executable, "-m", "unifiedreward", "judge", "--help"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    for flag in HELP_FLAGS.split():
        assert flag in result.stdout, flag

    assert cli_main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "judge" in out and "demo" in out
    assert cli_main(["nope"]) == 2

    config = tmp_path / "judge.yaml"
    config.write_text("input: a.jsonl\noutput: b.jsonl\nbackend: openai\nchunk_size: 16\norder: both\n")
    (args,) = parse_args([JudgeArguments], ["--config", str(config), "--chunk_size", "8"])
    assert (args.input, args.output, args.backend, args.chunk_size, args.order) == ("a.jsonl", "b.jsonl", "openai",
                                                                                    8, "both")  # fmt: skip
