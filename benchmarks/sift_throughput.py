"""Candidates sifted per second for each strategy (upstream, tournament, pointwise) on a real backend.

    python benchmarks/sift_throughput.py                                  # tiny random Qwen2.5-VL on CPU
    python benchmarks/sift_throughput.py --shape 7b --device cuda --sets 16 --batch_size 32

Each candidate set is one ``--image_size`` image, a question and ``--num_candidates`` text answers (image
understanding, the ``infer+sift.py`` workload). The reward model has random weights (``--shape 7b``: the
Qwen2.5-VL-7B shape, see ``unifiedreward.testing.shapes``), so its generated text would never parse and upstream's
strategy would stop after the rounds. The backend therefore generates every answer for real (``--new_tokens``
tokens, EOS disabled, so the compute is what a real judge spends) and then *replaces the text* with a valid answer
drawn from a hash of the prompt, so every strategy runs its full call pattern. Answer probabilities (tournament)
and expected scores (pointwise) come from the real logits.

Printed per strategy: wall seconds, judge calls, candidates judged per second, calls per second; with
``--per_input`` each set is judged in its own batches (``infer+sift.py``'s default, byte-stable results), without
it all sets of the run share batches.
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import time

import numpy as np
import torch


class ValidAnswers:
    """Wraps a :class:`TransformersBackend`: real generation, then a valid answer text keyed by the prompt."""

    def __init__(self, backend):
        self.backend = backend
        self.score = backend.score

    def generate(self, prompts, config):
        out = self.backend.generate(prompts, config)
        answers = []
        for prompt, generation in zip(prompts, out, strict=True):
            digest = int(hashlib.sha256(prompt.text().encode()).hexdigest()[:8], 16)
            text = prompt.text()
            if "Answer 1" in text and "Answer 2" in text and "Final Score" not in text:
                answer = f"Answer {1 + digest % 2} is better"
            else:
                answer = f"Final Score: {digest % 101}"
            answers.append(type(generation)(answer, None, generation.num_prompt_tokens,
                                            generation.num_generated_tokens, generation.meta))  # fmt: skip
        return answers


def make_sets(n: int, num_candidates: int, size: int, seed: int = 0):
    from PIL import Image

    from unifiedreward.preference import Candidate, CandidateSet

    rng = np.random.default_rng(seed)
    words = ["red", "blue", "square", "circle", "two", "three", "left", "right", "moving", "still", "large", "small"]
    sets = []
    for i in range(n):
        image = Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
        answers = [" ".join(rng.choice(words, size=12)) + f" ({j})" for j in range(num_candidates)]
        sets.append(CandidateSet(f"s{i}", "image_understanding", f"What is in picture {i}?",
                                 [Candidate(a, seed=j) for j, a in enumerate(answers)], image=image))  # fmt: skip
    return sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=["tiny", "7b"], default="tiny", help="Model shape (random weights).")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda.")
    parser.add_argument("--dtype", default=None, help="float32 / bfloat16 (default: bf16 on CUDA, fp32 on CPU).")
    parser.add_argument("--sets", type=int, default=4, help="Candidate sets (inputs) per measurement.")
    parser.add_argument("--num_candidates", type=int, default=10, help="Answers per set (upstream: 10).")
    parser.add_argument("--batch_size", type=int, default=16, help="Prompts per judge forward.")
    parser.add_argument("--image_size", type=int, default=448, help="Side of each square image, pixels.")
    parser.add_argument("--new_tokens", type=int, default=16, help="Tokens generated per judge answer.")
    parser.add_argument("--per_input", action="store_true", help="Judge each set in its own batches.")
    parser.add_argument("--strategies", default="upstream,tournament,pointwise,pointwise:generate",
                        help="Comma-separated list; 'name:generate' forces generated answers (no logits pass).")
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype) if args.dtype else (torch.bfloat16 if args.device.startswith("cuda") else
                                                           torch.float32)  # fmt: skip

    from unifiedreward.judge import GenerationConfig, RewardJudge, TransformersBackend
    from unifiedreward.preference import STRATEGIES, sift
    from unifiedreward.testing.shapes import build_qwen25_vl

    model, processor = build_qwen25_vl(args.shape, device=args.device, dtype=dtype)
    model.generation_config.min_new_tokens = args.new_tokens  # equal answer lengths: EOS cannot end an answer early
    backend = ValidAnswers(TransformersBackend(model, processor, batch_size=args.batch_size))
    judge = RewardJudge(backend, family="qwen", generation=GenerationConfig(max_new_tokens=args.new_tokens))
    sets = make_sets(args.sets, args.num_candidates, args.image_size)
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "cpu"
    print(f"machine: {device_name} | torch {torch.__version__} | {args.shape} model, {model.num_parameters():,} "
          f"params | {dtype} | {args.sets} sets x {args.num_candidates} candidates, {args.image_size}px image, "
          f"{args.new_tokens} tokens per generated answer, batch {args.batch_size}, "
          f"{'per-input' if args.per_input else 'shared'} batches")  # fmt: skip

    def run(name: str) -> list:
        strategy, _, scoring = name.partition(":")
        config = None
        if scoring:
            config = STRATEGIES[strategy][1](scoring=scoring)
        if args.per_input:
            return [sift([s], judge, strategy, config)[0] for s in sets]
        return sift(sets, judge, strategy, config)

    print(f"{'strategy':<19} {'seconds':>8} {'calls':>7} {'kept':>5} {'cand/s':>8} {'calls/s':>8}")
    for strategy in args.strategies.split(","):
        run(strategy)  # warm-up
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        decisions = run(strategy)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        calls = sum(d.judge_calls for d in decisions)
        kept = sum(d.kept for d in decisions)
        candidates = args.sets * args.num_candidates
        print(f"{strategy:<19} {seconds:>8.2f} {calls:>7} {kept:>5} {candidates / seconds:>8.2f} "
              f"{calls / seconds:>8.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
