"""The demo's closed loop (``unifiedreward.demo.policy_loop``): answer scoring, questions, control pairs, report."""

from __future__ import annotations

import json

import pytest

from unifiedreward.demo.policy_loop import (
    answer_colors,
    control_pairs,
    is_correct,
    loop_table,
    pair_precision,
    write_questions,
)
from unifiedreward.demo.report import loop_target_lines


@pytest.mark.parametrize(
    ("text", "truth", "correct"),
    [
        ("The circles are red.", "red", True),
        ("the circle is RED", "red", True),
        ("The circle is red. It is red.", "red", True),  # the same colour twice is still one colour
        ("The circle is blue.", "red", False),
        ("The circle is red or blue.", "red", False),  # hedging over two colours is wrong
        ("The circle is reddish.", "red", False),  # whole words only
        ("It is at the start.", "red", False),  # no colour named
        ("", "red", False),
        (None, "red", False),  # a failed generation
    ],
)
def test_is_correct_needs_exactly_the_true_colour(text, truth, correct):
    assert is_correct(text, truth) is correct


def test_answer_colors_keeps_order_and_repeats():
    assert answer_colors("Red square, then BLUE, then red.") == ["red", "blue", "red"]


@pytest.mark.parametrize("task", ["image_understanding", "video_understanding"])
def test_write_questions_is_deterministic_and_answers_are_true(tmp_path, task):
    from unifiedreward.synth import World

    world = World(seed=3)
    sizes = {"policy": 5, "sift": 4, "heldout": 4}
    files = write_questions(world, tmp_path / "a", task, sizes)
    again = write_questions(world, tmp_path / "b", task, sizes)
    key = "video" if task == "video_understanding" else "image"
    for split, path in files.items():
        assert path.read_text() == again[split].read_text()  # same world, same questions and media names
        rows = json.loads(path.read_text())
        assert len(rows) == sizes[split]
        for row in rows:
            assert (path.parent / row[key]).is_file()
    ids = [r["id"] for p in files.values() for r in json.loads(p.read_text())]
    assert len(ids) == len(set(ids)) == 13  # the splits are disjoint
    for split in ("sift", "heldout"):
        for row in json.loads(files[split].read_text()):
            assert is_correct(row["answer"], row["truth"]), row  # the reference answer is right by the scorer
            assert "color" in row["prompt"]
    policy = json.loads(files["policy"].read_text())
    human, gpt = policy[0]["conversations"]
    assert human["from"] == "human" and human["value"].startswith(f"<{key}>\n")
    assert gpt["from"] == "gpt" and len(answer_colors(gpt["value"])) == 1


def _line(record_id, outputs, kept=True):
    return {"id": record_id, "kept": kept, "candidates": [{"output": o, "seed": 1} for o in outputs]}


QUESTIONS = {
    "q1": {"id": "q1", "image": "m/q1.png", "prompt": "What color is the circle?", "truth": "red"},
    "q2": {"id": "q2", "image": "m/q2.png", "prompt": "What color are the squares?", "truth": "blue"},
    "q3": {"id": "q3", "image": "m/q3.png", "prompt": "What color is the triangle?", "truth": "green"},
}


def test_control_pairs_ground_truth_and_random():
    decisions = [
        _line("q1", ["It is red.", "It is blue.", "It is red.", "It is green."]),  # mixed: a truth pair
        _line("q2", ["They are red.", "They are red."], kept=False),  # all wrong, not kept: no pair at all
        _line("q3", ["It is green.", "It is green."]),  # kept but identical texts: no random pair
        _line("unknown", ["a", "b"]),  # not a loop question: ignored
    ]
    arms = control_pairs(decisions, QUESTIONS, "image_understanding", seed=0)
    (truth,) = arms["ground truth"]
    assert truth["id"] == "q1" and truth["chosen"] == "It is red." and truth["rejected"] in {"It is blue.", "It is green."}
    assert truth["image"] == "m/q1.png" and truth["prompt"] == "What color is the circle?"
    (rand,) = arms["random"]
    assert rand["id"] == "q1" and rand["chosen"] != rand["rejected"]
    assert {rand["chosen"], rand["rejected"]} <= {"It is red.", "It is blue.", "It is green."}
    assert control_pairs(decisions, QUESTIONS, "image_understanding", seed=0) == arms  # seeded


def test_random_pairs_are_balanced_against_the_truth():
    decisions = [_line("q1", ["It is red.", "It is blue."]) for _ in range(400)]
    decisions += [_line("q2", ["They are red.", "They are green."]) for _ in range(10)]  # both wrong: any order
    for seed in range(5):
        arms = control_pairs(decisions, QUESTIONS, "image_understanding", seed=seed)
        assert len(arms["random"]) == 410
        assert pair_precision(arms["random"], QUESTIONS) == {"right": 200, "reversed": 200, "same": 10, "precision": 0.5}
        # a random half, not the first half: the orientation of the q1 pairs is not a block
        first = [p["chosen"] == "It is red." for p in arms["random"][:200]]
        assert 0 < sum(first) < 200
    odd = control_pairs(decisions[:401], QUESTIONS, "image_understanding", seed=0)["random"]
    assert pair_precision(odd, QUESTIONS)["right"] in {200, 201}


def test_pair_precision_counts():
    pairs = [
        {"id": "q1", "chosen": "It is red.", "rejected": "It is blue."},  # right
        {"id": "q1", "chosen": "It is blue.", "rejected": "It is red."},  # reversed
        {"id": "q2", "chosen": "They are red.", "rejected": "They are green."},  # both wrong
        {"id": "q2", "chosen": "They are blue.", "rejected": "They are yellow."},  # right
    ]
    assert pair_precision(pairs, QUESTIONS) == {"right": 2, "reversed": 1, "same": 1, "precision": 2 / 3}
    assert pair_precision([], QUESTIONS)["precision"] is None


def _loop(reward, truth, rand, seconds=200.0):
    arm = lambda gain, pairs: {"pairs": pairs, "precision": 0.9, "accuracy": 0.4 + gain, "gain": gain,  # noqa: E731
                               "greedy": 0.2 + 2 * gain, "greedy_gain": 2 * gain}  # fmt: skip
    return {"task": "image_understanding", "strategy": "pointwise", "heldout_questions": 300, "before": 0.4,
            "before_greedy": 0.2, "eval_samples": 4, "seconds": seconds,
            "arms": {"reward model": arm(reward, 120), "ground truth": arm(truth, 150), "random": arm(rand, 120)}}  # fmt: skip


def test_loop_table_and_targets():
    loop = _loop(0.2, 0.3, 0.01)
    table = loop_table(loop)
    assert "| reward model | 120 | 90.0% | 40.0% | 60.0% | +20.0 pts | 20.0% -> 60.0% (+40.0) |" in table
    assert "| random | 120 | 90.0% | 40.0% | 41.0% | +1.0 pts | 20.0% -> 22.0% (+2.0) |" in table
    assert "among 4 sampled per question" in table
    # a loop measured greedily (--loop_eval_samples 0) says so by not naming samples; old results lack the column
    old = {**_loop(0.2, 0.3, 0.01), "eval_samples": 0, "before_greedy": None}
    assert "sampled" not in loop_table(old) and "| +20.0 pts | - |" in loop_table(old)
    lines = loop_target_lines(loop)
    assert all(line.endswith("met") and "not met" not in line for line in lines[:4]), lines
    assert lines[2] == "- random pairs do not help (<= +2 points): +1.0: met"
    assert "3.3 min on this machine (met)" in lines[4]

    failing = loop_target_lines(_loop(0.08, 0.3, 0.06, seconds=400))
    assert "+8.0 points (>= +10): not met" in failing[0]
    assert "(+30.0): not met" in failing[1]  # 8 < 30 / 2
    assert failing[2] == "- random pairs do not help (<= +2 points): +6.0: not met"
    assert failing[3] == "- reward-model pairs beat random pairs by >= 10 points: +2.0: not met"
    assert "6.7 min on this machine (not met)" in failing[4]


def test_dpo_policy_passes_the_loop_flags_to_run_dpo(tmp_path, monkeypatch):
    from unifiedreward.demo.args import DemoArguments, resolve
    from unifiedreward.demo.policy_loop import dpo_policy
    from unifiedreward.dpo import vlm

    seen = {}

    def fake_run_dpo(model_args, data_args, args):
        seen.update(model=model_args.model_name_or_path, data=data_args.data_path, beta=args.beta, lr=args.learning_rate,
                    epochs=args.num_train_epochs, loss=list(args.loss_type), weights=args.loss_weights)  # fmt: skip
        state = type("S", (), {"global_step": 3, "log_history": [{"loss": 0.69}, {"loss": 0.5}]})()
        return type("T", (), {"state": state})()

    monkeypatch.setattr(vlm, "run_dpo", fake_run_dpo)
    args = resolve(DemoArguments(loop_beta=0.2, loop_dpo_lr=5e-5, loop_dpo_epochs=1.0, loop_sft_weight=0.5))
    result = dpo_policy(args, tmp_path / "policy", tmp_path / "pairs.json", tmp_path, tmp_path / "out")
    assert result == {"steps": 3, "first_loss": 0.69, "last_loss": 0.5}
    assert seen["model"] == str(tmp_path / "policy") and seen["data"] == str(tmp_path / "pairs.json")
    assert (seen["beta"], seen["lr"], seen["epochs"]) == (0.2, 5e-5, 1.0)
    assert seen["loss"] == ["sigmoid", "sft"] and seen["weights"] == [1.0, 0.5]  # upstream's gamma as TRL's sft loss
