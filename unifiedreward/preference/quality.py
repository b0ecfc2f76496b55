"""Sifting quality on ground truth: candidate sets from the synthetic world, where every answer's truth is known.

A set is one world scene (:class:`unifiedreward.synth.World`), a question about one attribute (colour, shape, count
or position) and N answers, each true of the scene with probability ``p_correct`` and otherwise true of a perturbed
scene (:func:`unifiedreward.synth.world.perturb_scene`). For each strategy (:func:`evaluate`):

* **precision**: the fraction of kept pairs whose chosen answer is correct and whose rejected answer is wrong (the
  only pairs that are truly ordered; two correct or two wrong answers count against it);
* **yield**: kept pairs per set (``oracle_yield``: the fraction of sets that hold a correct and a wrong answer);
* **calls per kept pair**: judge calls / kept pairs.

The judge is a real reward model (``--reward_model``, e.g. the demo's ``outputs/demo/model/trained``), or, to compare
strategies under a known noise model, :class:`NoisyOracle`: a scripted backend that prefers the correct answer with
probability ``accuracy`` (before per-prompt logit noise), leans to answer 1 by ``position_bias``, and scores a
correct answer 70 and a wrong one 40 plus Gaussian noise of ``score_noise`` (0-100 scale).

    python -m unifiedreward.preference.quality --sets 200 --accuracy 0.75 --position_bias 0.2
    python -m unifiedreward.preference.quality --sets 200 --reward_model outputs/demo/model/trained
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from unifiedreward.judge.base import Generation
from unifiedreward.preference.candidates import Candidate, CandidateSet
from unifiedreward.preference.strategies import sift

logger = logging.getLogger(__name__)

QUESTION_TYPES = ("color", "shape", "count", "position")
_PAIR = re.compile(r"Question: (.*)\nAnswer 1: (.*)\nAnswer 2: (.*)\n")
_POINT = re.compile(r"Question: \[(.*?)\]\s*\n\s*Response: \[(.*)\]")
_TAG = re.compile(r" \(#\d+\)$")


def world_sets(num_sets: int, num_candidates: int, *, p_correct: float = 0.5, seed: int = 0, world: Any = None,
               tag_samples: bool = False) -> tuple[list[CandidateSet], dict[tuple[str, str], bool]]:  # fmt: skip
    """``num_sets`` image-understanding sets from the world, and ``{(question, answer): correct}`` for every answer.

    Deterministic in ``seed`` (the world's scenes, the question types and which answers are correct). The world has
    few wordings per answer, so a set repeats texts, and a deterministic judge gives repeated texts the same
    (possibly wrong) verdicts; ``tag_samples`` appends `` (#j)`` to answer ``j`` to simulate distinct samples of
    the same content (the truth is keyed by the untagged text; use it with :class:`NoisyOracle` only).
    """
    from unifiedreward.synth import World
    from unifiedreward.synth.text import image_answer, image_question
    from unifiedreward.synth.world import perturb_scene

    world = world or World(seed=seed)
    rng = np.random.default_rng(seed)
    sets, truth = [], {}
    for index in range(num_sets):
        scene = world.random_scene(index)
        qtype = QUESTION_TYPES[int(rng.integers(len(QUESTION_TYPES)))]
        question = image_question(scene.spec, qtype)
        right = image_answer(scene.spec, qtype)
        truth[(question, right)] = True
        candidates = []
        for j in range(num_candidates):
            if rng.random() < p_correct:
                answer = right
            else:
                answer = image_answer(perturb_scene(scene.spec, qtype, rng), qtype)
                truth[(question, answer)] = answer == right
            candidates.append(Candidate(f"{answer} (#{j})" if tag_samples else answer, seed=j))
        sets.append(CandidateSet(str(index), "image_understanding", question, candidates, image=scene.image))
    return sets, truth


def _uniform(*key: Any) -> float:
    """A deterministic number in [0, 1) from ``key``."""
    return int(hashlib.sha256(repr(key).encode()).hexdigest()[:12], 16) / 16**12


class NoisyOracle:
    """A scripted judge backend with a known noise model; answers the Qwen 1.0 image-understanding templates.

    Pair prompt (first answer ``a``, second ``b``): ``P(first) = sigmoid(logit(q) + logit_noise * e)`` with
    ``q = (1 - position_bias) * p + position_bias``, ``p = accuracy`` when only ``a`` is correct, ``1 - accuracy``
    when only ``b`` is, 0.5 otherwise, and ``e`` a standard normal drawn from a hash of the prompt text (so each pair
    and order gets its own noise, and a repeated prompt its same answer, as a deterministic model would). The
    generated verdict is the argmax (greedy decoding); ``score`` returns the probabilities. Point score: 70 for a
    correct answer, 40 for a wrong one, plus ``score_noise`` times a standard normal, rounded and clipped to 0-100.
    """

    def __init__(self, truth: dict[tuple[str, str], bool], *, accuracy: float = 0.75, position_bias: float = 0.2,
                 logit_noise: float = 1.0, score_noise: float = 15.0):  # fmt: skip
        self.truth, self.accuracy, self.position_bias = truth, accuracy, position_bias
        self.logit_noise, self.score_noise = logit_noise, score_noise

    def _correct(self, question: str, answer: str) -> bool:
        return self.truth[(question, _TAG.sub("", answer))]

    def _p_first(self, text: str) -> float:
        question, first, second = _PAIR.search(text).groups()
        a, b = self._correct(question, first), self._correct(question, second)
        p = 0.5 if a == b else (self.accuracy if a else 1 - self.accuracy)
        q = (1 - self.position_bias) * p + self.position_bias
        logit = math.log(q / (1 - q)) + self.logit_noise * _normal("pair", text)
        return 1 / (1 + math.exp(-logit))

    def _score(self, text: str) -> int:
        question, answer = _POINT.search(text).groups()
        base = 70 if self._correct(question, answer) else 40
        return int(min(100, max(0, round(base + self.score_noise * _normal("point", text)))))

    def generate(self, prompts: Sequence[Any], config: Any) -> list[Generation]:
        out = []
        for prompt in prompts:
            text = prompt.text()
            if _PAIR.search(text):
                out.append(Generation(f"Answer {1 if self._p_first(text) > 0.5 else 2} is better"))
            else:
                out.append(Generation(f"Final Score: {self._score(text)}"))
        return out

    def score(self, prompts: Sequence[Any], candidates: Sequence[str], *, assistant_prefixes: Any = None) -> Any:
        import torch

        rows = []
        for prompt in prompts:
            text = prompt.text()
            if assistant_prefixes is None:
                p = self._p_first(text)
                rows.append([math.log(p), math.log(1 - p)][: len(candidates)])
            else:  # the expected score equals the generated score
                value = self._score(text)
                rows.append([0.0 if k == value else -1e4 for k in range(len(candidates))])
        return torch.tensor(rows, dtype=torch.float64)


def _normal(*key: Any) -> float:
    """A deterministic standard-normal number from ``key`` (Box-Muller over two hashed uniforms)."""
    u1, u2 = max(_uniform("n1", *key), 1e-12), _uniform("n2", *key)
    return math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)


def evaluate(sets: Sequence[CandidateSet], truth: dict[tuple[str, str], bool], judge: Any,
             strategies: Sequence[str] = ("upstream", "tournament", "pointwise"), configs: dict | None = None
             ) -> dict[str, dict[str, float | int | None]]:  # fmt: skip
    """Precision, yield and calls per kept pair of each strategy on ``sets`` (module docstring)."""
    configs = configs or {}

    def correct(cset: CandidateSet, index: int) -> bool:
        return truth[(cset.prompt, _TAG.sub("", cset.candidates[index].output))]

    mixed = sum(1 for s in sets if len({correct(s, i) for i in range(len(s))}) == 2)
    results = {}
    for strategy in strategies:
        decisions = [sift([s], judge, strategy, configs.get(strategy))[0] for s in sets]
        kept = [(s, d) for s, d in zip(sets, decisions, strict=True) if d.kept]
        right = sum(1 for s, d in kept if correct(s, d.chosen) and not correct(s, d.rejected))
        calls = sum(d.judge_calls for d in decisions)
        results[strategy] = {
            "sets": len(sets), "kept": len(kept), "precision": right / len(kept) if kept else None,
            "yield": len(kept) / len(sets), "oracle_yield": mixed / len(sets), "judge_calls": calls,
            "calls_per_kept": calls / len(kept) if kept else None,
        }  # fmt: skip
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Print the quality table (module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", type=int, default=100, help="Candidate sets (world scenes).")
    parser.add_argument("--num_candidates", type=int, default=10, help="Answers per set.")
    parser.add_argument("--p_correct", type=float, default=0.5, help="Probability that an answer is correct.")
    parser.add_argument("--seed", type=int, default=0, help="World and draw seed.")
    parser.add_argument("--reward_model", default=None, help="Judge with this checkpoint (else the noisy oracle).")
    parser.add_argument("--accuracy", type=float, default=0.75, help="Noisy oracle: P(correct answer preferred).")
    parser.add_argument("--position_bias", type=float, default=0.2, help="Noisy oracle: P(answers '1' anyway).")
    parser.add_argument("--logit_noise", type=float, default=1.0, help="Noisy oracle: per-prompt verdict noise.")
    parser.add_argument("--score_noise", type=float, default=15.0, help="Noisy oracle: point-score noise (0-100).")
    args = parser.parse_args(argv)
    from unifiedreward.judge.judge import RewardJudge

    sets, truth = world_sets(args.sets, args.num_candidates, p_correct=args.p_correct, seed=args.seed,
                             tag_samples=not args.reward_model)  # fmt: skip
    if args.reward_model:
        from unifiedreward.judge.hf_backend import TransformersBackend
        from unifiedreward.modeling import model_family

        backend = TransformersBackend.from_pretrained(args.reward_model)
        judge = RewardJudge(backend, family=model_family(backend.model))
        what = args.reward_model
    else:
        oracle = NoisyOracle(truth, accuracy=args.accuracy, position_bias=args.position_bias,
                             logit_noise=args.logit_noise, score_noise=args.score_noise)  # fmt: skip
        judge = RewardJudge(oracle, family="qwen")
        what = (f"noisy oracle (accuracy {args.accuracy}, position bias {args.position_bias}, logit noise "
                f"{args.logit_noise}, score noise {args.score_noise})")  # fmt: skip
    results = evaluate(sets, truth, judge)
    print(f"judge: {what} | {args.sets} sets x {args.num_candidates} answers, p_correct {args.p_correct}")
    print(f"{'strategy':<12} {'kept':>5} {'precision':>9} {'yield':>6} {'oracle':>6} {'calls/kept':>10}")
    for name, row in results.items():
        precision = "n/a" if row["precision"] is None else f"{row['precision']:.3f}"
        per_kept = "n/a" if row["calls_per_kept"] is None else f"{row['calls_per_kept']:.1f}"
        print(f"{name:<12} {row['kept']:>5} {precision:>9} {row['yield']:>6.3f} {row['oracle_yield']:>6.3f} "
              f"{per_kept:>10}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
