"""The README's first command, ``python -m unifiedreward.demo``, in its ``--quick`` form (a few training steps)."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.smoke


def test_quick_demo_writes_its_table_plots_and_examples(tmp_path, capsys):
    from unifiedreward.demo import TASK_LABELS, main

    out = tmp_path / "demo"
    assert main(["--quick", "--output_dir", str(out), "--captioning_steps", "3", "--judging_steps", "3"]) == 0
    printed = capsys.readouterr().out
    assert "pair-rank accuracy before" in printed and "mean of the four" in printed

    for name in ("results.md", "results.json", "world.json", "loss.png", "accuracy.png", "examples.png",
                 "examples.html", "train/command.txt", "train/log_history.json"):  # fmt: skip
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    for name in ("loss.png", "accuracy.png", "examples.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "model" / "init" / "config.json").is_file()
    assert (out / "model" / "trained" / "model.safetensors").is_file()
    assert (out / "data" / "train" / "train_data.yaml").is_file()

    summary = json.loads((out / "results.json").read_text())
    assert set(summary["before"]) == set(summary["after"]) == set(TASK_LABELS)
    for stage in ("before", "after"):
        for task in TASK_LABELS:
            pair = summary[stage][task]["pair"]
            assert pair["n"] > 0 and 0.0 <= pair["accuracy"] <= 1.0
            by_attribute = pair["by_attribute"]  # the accuracy per attribute that tells the candidates apart
            assert sum(v["n"] for v in by_attribute.values()) == pair["n"]
            assert set(by_attribute) <= {"color", "shape", "count", "position", "direction", "end_color", "describe"}
            assert summary[stage][task]["point"]["items"] == 4
        for key in ("genai_bench_image", "vl_rewardbench", "genai_bench_video", "video_understanding"):
            results = json.loads((out / "eval" / stage / key / "results.json").read_text())
            # explained answers (the default): pairs are judged by generating and parsing the verdict
            assert results["settings"]["scoring"] == "generate" and results["counts"]["media_errors"] == 0
        assert (out / "eval" / stage / "point_score" / "judged.jsonl").is_file()
    history = json.loads((out / "train" / "log_history.json").read_text())
    # stage 1 (captioning records only) then stage 2 (the whole mixture) from stage 1's weights
    assert [(h["step"], h["stage"]) for h in history if "loss" in h] == [(1, 1), (2, 1), (3, 1), (4, 2), (5, 2), (6, 2)]
    first, second = summary["train_commands"]
    assert first.startswith("python -m unifiedreward.train ") and "train_captioning.yaml" in first
    assert f"--model_name_or_path {out / 'model' / 'stage1_captioning'}" in second and "train_data.yaml" in second
    assert (out / "train" / "command.txt").read_text().splitlines() == [first, second]
    assert "captioning_image.json" in (out / "data" / "train" / "train_captioning.yaml").read_text()
    assert "image_generation_pair_rank" not in (out / "data" / "train" / "train_captioning.yaml").read_text()
    assert len(summary["examples"]) == 4 * 2 + 4
    assert all(isinstance(e["after_answer"], str) for e in summary["examples"])  # the generated answers, shown
    # the schedule is fixed in steps: each stage runs exactly its steps, stage 2 ends with a linear cooldown
    assert "--max_steps 3" in first and "--max_steps 3" in second
    assert "constant_with_warmup" in first and "warmup_stable_decay" in second and "--lr_scheduler_kwargs" in second
    report = (out / "results.md").read_text()
    assert "| image generation |" in report
    assert "None" not in report  # every cell is a number or n/a
    assert set(summary["stages"]) == {"world", "model", "eval before", "train", "eval after", "policy loop",
                                      "diffusion loop", "video loop", "report"}  # fmt: skip

    # the diffusion loop: a pre-trained tiny text-to-image model, its images sifted by the trained reward model with
    # sift_dpo_data.py's code, Diffusion-DPO on each arm, ground-truth rates on the pixels, the grid in the report
    diffusion = summary["diffusion_loop"]
    assert diffusion["reward_model"] == str(out / "model" / "trained") and diffusion["heldout_prompts"] == 4
    assert set(diffusion["arms"]) == {"reward model", "ground truth", "random"}
    assert set(diffusion["before"]) == {"color", "shape", "position", "all"}
    decisions = (out / "diffusion_loop" / "pairs" / "reward_model" / "sift.decisions.jsonl").read_text().splitlines()
    assert len(decisions) == 6  # one line per sifted caption, kept or not
    generated = json.loads((out / "diffusion_loop" / "generated" / "data.json").read_text())
    assert len(generated) == 6 and all(len(r["images"]) == 4 and len(r["seeds"]) == 4 for r in generated)
    truth = diffusion["arms"]["ground truth"]
    if truth["pairs"] >= 2:  # trained through DiffusionDPO/train.py's code and reloaded by its inference code
        assert truth["steps"] >= 1 and (out / "diffusion_loop" / "dpo" / "ground_truth" / "dpo_training.json").is_file()
    assert "Diffusion loop (32px" in report and "diffusion loop <= 6 min" in report
    assert (out / "diffusion_loop.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the video loop: a pre-trained tiny AnimateDiff model, its mp4s sifted by the trained reward model with
    # VideoDPO/sift_dpo_data.py's code, the arms, the per-attribute table and the frame strip in the report
    video = summary["video_loop"]
    assert video["reward_model"] == str(out / "model" / "trained") and video["heldout_prompts"] == 4
    assert set(video["arms"]) == {"reward model", "ground truth", "random"}
    assert set(video["before"]) == {"color", "shape", "direction", "change", "all"}
    decisions = (out / "video_loop" / "pairs" / "reward_model.decisions.jsonl").read_text().splitlines()
    assert len(decisions) == 6
    generated = json.loads((out / "video_loop" / "generated" / "data.json").read_text())
    assert len(generated) == 6 and all(len(r["videos"]) == 4 and len(r["seeds"]) == 4 for r in generated)
    assert "Video loop (16px 4-frame" in report and "video loop <= 6 min" in report
    assert (out / "video_loop.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the closed loop ran on the trained reward model, from the captioning-stage weights, through infer+sift.py's
    # pipeline (decision log with every input's candidates) and reports each arm
    loop = summary["policy_loop"]
    assert loop["reward_model"] == str(out / "model" / "trained")
    assert loop["policy_start"] == str(out / "model" / "stage1_captioning")
    assert set(loop["arms"]) == {"reward model", "ground truth", "random"} and loop["heldout_questions"] == 6
    decisions = (out / "policy_loop" / "pairs" / "reward_model.decisions.jsonl").read_text().splitlines()
    assert len(decisions) == 6 and all(len(json.loads(line)["candidates"]) == 4 for line in decisions)
    assert "Policy loop (image_understanding" in report and "closed loop <= 6 min" in report
    assert (out / "policy_loop.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # DPO of the loop's policy on ground-truth pairs of its own questions: the trained policy reloads and answers
    from unifiedreward.demo.args import DemoArguments, resolve
    from unifiedreward.demo.policy_loop import confused_color, dpo_policy, policy_accuracy

    data = out / "policy_loop" / "data"
    pairs = [{"id": q["id"], "image": q["image"], "prompt": q["prompt"], "chosen": q["answer"],
              "rejected": q["answer"].replace(q["truth"], confused_color(q["truth"]))}
             for q in json.loads((data / "sift.json").read_text())]  # fmt: skip
    (out / "gt_pairs.json").write_text(json.dumps(pairs))
    args = resolve(DemoArguments(quick=True, output_dir=str(out), loop_dpo_epochs=1))
    trained = dpo_policy(args, out / "policy_loop" / "policy", out / "gt_pairs.json", data, out / "dpo_gt")
    assert trained["steps"] == 2 and trained["first_loss"] is not None  # 6 pairs, batch 4, one epoch
    accuracy = policy_accuracy(out / "dpo_gt", data / "heldout.json", "image_understanding", samples=3, seed=5)
    assert accuracy["total"] == 6 and len(accuracy["answers"]) == 6 and accuracy["samples"] == 3
    assert accuracy["accuracy"] == accuracy["sampled"] and round(accuracy["sampled"] * 18, 6).is_integer()
    assert accuracy["greedy"] == accuracy["correct"] / 6
    again = policy_accuracy(out / "dpo_gt", data / "heldout.json", "image_understanding", samples=3, seed=5)
    assert again == accuracy  # seeded per question: the same draws before and after DPO
    greedy = policy_accuracy(out / "dpo_gt", data / "heldout.json", "image_understanding", samples=0)
    assert greedy["sampled"] is None and greedy["accuracy"] == greedy["greedy"] == accuracy["greedy"]

    # --loop_only reruns the loop on the finished run and merges it into results.json / results.md
    (out / "policy_loop.png").unlink()
    assert main(["--quick", "--loop_only", "--output_dir", str(out), "--loop_num_heldout", "3"]) == 0
    merged = json.loads((out / "results.json").read_text())
    assert merged["policy_loop"]["heldout_questions"] == 3 and merged["after"] == summary["after"]
    assert (out / "policy_loop.png").is_file() and "3 held-out questions" in (out / "results.md").read_text()
    # ... and names what is missing when there is no trained reward model
    with pytest.raises(FileNotFoundError, match="no trained reward model"):
        main(["--quick", "--loop_only", "--output_dir", str(tmp_path / "empty")])
    # --diffusion_loop_only likewise, reusing the pre-trained text-to-image model (same settings)
    assert main(["--quick", "--diffusion_loop_only", "--output_dir", str(out), "--t2i_eval_prompts", "3"]) == 0
    merged = json.loads((out / "results.json").read_text())
    assert merged["diffusion_loop"]["heldout_prompts"] == 3 and merged["policy_loop"]["heldout_questions"] == 3
    assert "reusing the pre-trained text-to-image model" in capsys.readouterr().out
    assert "3 held-out captions" in (out / "results.md").read_text()
    with pytest.raises(FileNotFoundError, match="--diffusion_loop_only"):
        main(["--quick", "--diffusion_loop_only", "--output_dir", str(tmp_path / "empty")])
    # --video_loop_only likewise
    assert main(["--quick", "--video_loop_only", "--output_dir", str(out), "--t2v_eval_prompts", "3",
                 "--t2v_min_margin", "0.25"]) == 0
    merged = json.loads((out / "results.json").read_text())
    sift = json.loads((out / "video_loop" / "pairs" / "reward_model.decisions.jsonl.settings.json").read_text())
    assert sift["strategy"] == "pointwise" and sift["strategy_config"]["min_margin"] == 0.25  # the flags reach it
    assert merged["video_loop"]["heldout_prompts"] == 3 and merged["diffusion_loop"]["heldout_prompts"] == 3
    assert "reusing the pre-trained text-to-video model" in capsys.readouterr().out
    assert "Video loop" in (out / "results.md").read_text()


def test_only_data_and_scale(tmp_path):
    from unifiedreward.demo import main

    out = tmp_path / "world"
    assert main(["--quick", "--only_data", "--scale", "2", "--output_dir", str(out)]) == 0
    info = json.loads((out / "world.json").read_text())
    counts = info["train_records"]
    assert {n for k, n in counts.items() if not k.startswith("captioning")} == {16}  # --quick's 8, doubled
    assert {n for k, n in counts.items() if k.startswith("captioning")} == {8}
    assert info["heldout_counts"]["genai_bench_image"] == 16
    assert not (out / "model").exists()
