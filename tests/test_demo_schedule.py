"""The demo's schedule (fixed in steps, an opt-in time cap) and its report cells (a number or n/a, never None)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from types import SimpleNamespace

import pytest

from unifiedreward.demo.args import DEFAULTS, QUICK, DemoArguments, resolve
from unifiedreward.demo.report import TASK_LABELS, results_table, target_lines, write_report
from unifiedreward.demo.training import plan_stages, train_argv

pytestmark = pytest.mark.unit


def _data(captioning: bool = True) -> SimpleNamespace:
    return SimpleNamespace(yaml_path=Path("/d/train_data.yaml"),
                           captioning_yaml_path=Path("/d/train_captioning.yaml") if captioning else None)  # fmt: skip


def test_default_schedule_is_fixed_in_steps_without_a_time_budget():
    args = resolve(DemoArguments())
    assert args.train_minutes is None  # a time budget would make the trained model depend on the machine
    assert (args.captioning_steps, args.judging_steps, args.batch_size) == (
        DEFAULTS["captioning_steps"], DEFAULTS["judging_steps"], DEFAULTS["batch_size"])  # fmt: skip
    stages = plan_stages(args, _data())
    assert [(s.name, s.steps, s.minutes) for s in stages] == [
        ("captioning", DEFAULTS["captioning_steps"], None), ("judging", DEFAULTS["judging_steps"], None),
        ("restart", DEFAULTS["restart_steps"], None)]  # fmt: skip
    assert [s.cooldown for s in stages] == [0.0, 0.2, 0.2]  # the judging stages end with a cooldown
    assert [s.seed_offset for s in stages] == [0, 0, 1]
    quick = resolve(DemoArguments(quick=True))
    assert (quick.captioning_steps, quick.judging_steps) == (QUICK["captioning_steps"], QUICK["judging_steps"])
    assert [s.name for s in plan_stages(quick, _data())] == ["captioning", "judging"]  # --quick: no restart


def test_the_restart_stage_has_a_fresh_seed_and_data_order_and_its_own_cooldown(tmp_path):
    args = resolve(DemoArguments(seed=3, captioning_steps=300, judging_steps=1000, restart_steps=500))
    _, second, third = plan_stages(args, _data())
    argv2 = train_argv(args, tmp_path / "s1", second, tmp_path / "s2", tmp_path / "cache")
    argv3 = train_argv(args, tmp_path / "s2", third, tmp_path / "s3", tmp_path / "cache")
    flags2, flags3 = dict(zip(argv2[::2], argv2[1::2], strict=True)), dict(zip(argv3[::2], argv3[1::2], strict=True))
    assert flags2["--seed"] == "3" and "--mixture_seed" not in flags2
    assert flags3["--seed"] == "4" and flags3["--mixture_seed"] == "4"  # another data order than stage 2
    assert flags3["--data_path"] == flags2["--data_path"] and flags3["--max_steps"] == "500"
    assert flags3["--model_name_or_path"] == str(tmp_path / "s2")  # from stage 2's weights; a fresh optimizer
    assert flags3["--warmup_steps"] == flags2["--warmup_steps"] == "100"
    assert json.loads(flags3["--lr_scheduler_kwargs"]) == {"num_decay_steps": 100, "decay_type": "linear"}
    from unifiedreward.train import parse_train_args

    _, data_args, training_args = parse_train_args(argv3)
    assert (training_args.seed, data_args.mixture_seed, training_args.max_steps) == (4, 4, 500)
    with pytest.raises(ValueError, match="restart_steps"):
        resolve(DemoArguments(restart_steps=-1))


def test_each_stage_runs_exactly_its_steps_and_the_last_one_cools_down_in_steps(tmp_path):
    args = resolve(DemoArguments(captioning_steps=300, judging_steps=1000, restart_steps=0))
    first, second = plan_stages(args, _data())
    argv1 = train_argv(args, tmp_path / "init", first, tmp_path / "s1", tmp_path / "cache")
    argv2 = train_argv(args, tmp_path / "s1", second, tmp_path / "s2", tmp_path / "cache")
    flags1, flags2 = dict(zip(argv1[::2], argv1[1::2], strict=True)), dict(zip(argv2[::2], argv2[1::2], strict=True))
    assert flags1["--max_steps"] == "300" and flags2["--max_steps"] == "1000"
    assert flags1["--lr_scheduler_type"] == "constant_with_warmup" and "--lr_scheduler_kwargs" not in flags1
    assert flags2["--lr_scheduler_type"] == "warmup_stable_decay"
    assert json.loads(flags2["--lr_scheduler_kwargs"]) == {"num_decay_steps": 200, "decay_type": "linear"}
    assert flags1["--data_path"].endswith("train_captioning.yaml") and flags2["--data_path"].endswith("train_data.yaml")
    # the flags parse with the entry point's own parser, and the saved command line is copy-pasteable
    from unifiedreward.train import parse_train_args

    _, _, training_args = parse_train_args(shlex.split(shlex.join(argv2)))
    assert training_args.max_steps == 1000 and training_args.lr_scheduler_kwargs["num_decay_steps"] == 200


def test_time_cap_is_opt_in_and_split_by_steps():
    args = resolve(DemoArguments(captioning_steps=1000, judging_steps=3000, restart_steps=0, train_minutes=8))
    first, second = plan_stages(args, _data())
    assert (first.minutes, second.minutes) == (2.0, 6.0)
    argv = train_argv(args, Path("m"), second, Path("o"), Path("c"))
    assert argv[argv.index("--lr_scheduler_type") + 1] == "constant_with_warmup"  # the cooldown follows the time
    assert argv[argv.index("--max_train_minutes") + 1] == "6" and argv[argv.index("--time_budget_cooldown") + 1] == "0.2"
    from unifiedreward.train import parse_train_args

    _, _, training_args = parse_train_args(argv)
    assert (training_args.max_train_minutes, training_args.time_budget_cooldown) == (6.0, 0.2)
    assert [s.name for s in plan_stages(resolve(DemoArguments(captioning_steps=0)), _data())] == ["judging", "restart"]
    assert [s.name for s in plan_stages(args, _data(captioning=False))] == ["judging"]
    with pytest.raises(ValueError, match="train_minutes"):
        resolve(DemoArguments(train_minutes=0))
    with pytest.raises(ValueError, match="judging_steps"):
        resolve(DemoArguments(judging_steps=0))


def _summary(pair: dict, point: dict) -> dict:
    return {task: {"pair": dict(pair), "point": dict(point)} for task in TASK_LABELS}


def test_report_cells_are_numbers_or_na_never_none(tmp_path):
    """Pairs judged by generating have no margins: the GenAI-Bench 'w/o ties' cell printed None before."""
    before = _summary({"accuracy": None, "n": 0, "valid": 0, "items": 8, "tau": None, "diff": None,
                       "official_4way": None}, {"spearman": None, "valid": 0, "items": 4})  # fmt: skip
    after = _summary({"accuracy": 0.9, "n": 8, "valid": 8, "items": 8, "tau": 81.25, "diff": 90.0,
                      "official_4way": 75.0}, {"spearman": 0.75, "valid": 4, "items": 4})  # fmt: skip
    after["video_generation"]["point"]["spearman"] = None
    args = resolve(DemoArguments(quick=True))
    summary = {"before": before, "after": after, "model": {"parameters": 10, "vocabulary": 5}, "train_steps": 8,
               "train_commands": ["a", "b"], "stages": {"train": 1.0}, "seconds": 600.0}  # fmt: skip
    table = write_report(args, tmp_path, summary)
    text = (tmp_path / "results.md").read_text()
    assert "None" not in text and "None" not in table
    assert "| image generation | 81.2 | 90.0 | n/a | 75.0 |" in text
    assert "n/a" in results_table(before, after)
    lines = target_lines(after, 600.0)
    assert lines[0].endswith(": met") and lines[2].endswith(": not met")  # video generation has no Spearman
    assert "10.0 min on this machine (met" in lines[-1]


def test_the_sample_cache_is_used_when_the_entry_point_has_one(tmp_path):
    from dataclasses import fields

    from unifiedreward.train import DataArguments

    has_cache = any(f.name == "sample_cache_dir" for f in fields(DataArguments))
    for wanted in (True, False):
        args = resolve(DemoArguments(sample_cache=wanted))
        argv = train_argv(args, tmp_path / "m", plan_stages(args, _data())[-1], tmp_path / "o", tmp_path / "cache")
        assert ("--sample_cache_dir" in argv) == (wanted and has_cache)
        if "--sample_cache_dir" in argv:
            assert argv[argv.index("--sample_cache_dir") + 1] == str(tmp_path / "cache")
