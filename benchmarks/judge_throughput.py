"""Pairs judged per second: upstream's one-at-a-time ``generate`` vs our batched backend vs the logits fast path.

    python benchmarks/judge_throughput.py                          # tiny random Qwen2.5-VL on CPU (seconds)
    python benchmarks/judge_throughput.py --shape 7b --device cuda --dtype bfloat16 --pairs 64 --batch_size 16

``--shape 7b`` builds a Qwen2.5-VL-7B-shaped model with random weights (no download): the text and vision configs
of the released checkpoint, with the tiny tokenizer (its ids are a subset of the 152,064-entry vocabulary). Each
pair is two ``--image_size`` images (448x448 by default) and the T-IG-PAIR-QWEN prompt.

Measured figures:
  (a) upstream: one pair per ``generate`` call, ``--new_tokens`` tokens each (EOS disabled so lengths match);
  (b) batched: :class:`TransformersBackend` with ``--batch_size`` pairs per call, same token count, batched vision
      attention and per-call vision feature reuse (on by default);
  (c) fast path: :meth:`TransformersBackend.score`, P(first)/P(second)/P(tie) from logits, no decoding;
  (d) the 0-100 point scale: :func:`unifiedreward.judge.scoring.score_candidates` over the 101 candidates
      ``" 0" .. " 100"`` for ``--batch_size`` prompts, at ``--max_rows`` cache rows per candidate forward, with the
      peak CUDA memory it allocated on top of the model (``--max_rows 0`` skips it);
and the vision/language split of one batched forward (CUDA events / wall time around the vision tower).
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch


def build(shape: str, device: str, dtype: torch.dtype):
    """``(model, processor)``: the tiny test model, or a 7B-shaped random one."""
    from unifiedreward.testing.shapes import build_qwen25_vl

    return build_qwen25_vl(shape, device=device, dtype=dtype)


def make_pairs(n: int, size: int, seed: int = 0):
    from PIL import Image

    from unifiedreward.protocol import render_prompt

    rng = np.random.default_rng(seed)
    prompts = []
    for i in range(n):
        images = [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(2)]
        prompts.append(render_prompt("T-IG-PAIR-QWEN", images=images, prompt=f"caption number {i}: a red cube"))
    return prompts


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, device: str, repeats: int) -> float:
    fn()  # warm-up
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync(device)
    return (time.perf_counter() - start) / repeats


def vision_split(model, processor, prompts, device: str) -> tuple[float, float]:
    """Seconds of one batched forward, and of its vision-tower part."""
    from unifiedreward.inputs import prepare_inputs

    inputs = prepare_inputs(processor, prompts).to(device)
    spent = {"vision": 0.0}
    visual = model.model.visual

    def pre(*_):
        sync(device)
        spent["start"] = time.perf_counter()

    def post(*_):
        sync(device)
        spent["vision"] += time.perf_counter() - spent["start"]

    handles = [visual.register_forward_pre_hook(pre), visual.register_forward_hook(post)]
    with torch.inference_mode():
        model(**inputs)  # warm-up
        spent["vision"] = 0.0
        sync(device)
        start = time.perf_counter()
        model(**inputs)
        sync(device)
        total = time.perf_counter() - start
    for handle in handles:
        handle.remove()
    return total, spent["vision"]


def point_scale_prompts(prompts, processor):
    """A callable ``(model, max_rows) -> (B, 101)`` scoring the 0-100 scale after ``Final Score:``."""
    from unifiedreward.judge.scoring import candidate_token_ids, score_candidates

    candidates = candidate_token_ids(processor.tokenizer, [f" {v}" for v in range(101)])
    prefixes = ["Final Score:"] * len(prompts)
    return lambda model, max_rows: score_candidates(model, processor, prompts, candidates,
                                                    assistant_prefixes=prefixes, max_rows=max_rows)  # fmt: skip


def peak_memory(fn, device: str) -> float | None:
    """Bytes of CUDA memory ``fn`` allocated at its peak, above what was allocated before (``None`` on CPU)."""
    if not device.startswith("cuda"):
        return None
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn()
    return torch.cuda.max_memory_allocated() - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=["tiny", "7b"], default="tiny", help="Model shape (random weights).")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda.")
    parser.add_argument("--dtype", default=None, help="float32 / bfloat16 (default: bf16 on CUDA, fp32 on CPU).")
    parser.add_argument("--pairs", type=int, default=16, help="Pairs per measurement.")
    parser.add_argument("--batch_size", type=int, default=16, help="Pairs per batch for (b) and (c).")
    parser.add_argument("--image_size", type=int, default=448, help="Side of each square image, pixels.")
    parser.add_argument("--new_tokens", type=int, default=8, help="Tokens generated per answer in (a) and (b).")
    parser.add_argument("--repeats", type=int, default=2, help="Timed repetitions (after one warm-up).")
    parser.add_argument("--skip_upstream", action="store_true", help="Skip (a), which is slow on big models.")
    parser.add_argument("--max_rows", type=int, default=64, help="(d): cache rows per candidate forward; 0 skips (d).")
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype) if args.dtype else (torch.bfloat16 if args.device.startswith("cuda") else
                                                           torch.float32)  # fmt: skip

    from unifiedreward.judge import GenerationConfig, TransformersBackend
    from unifiedreward.protocol import get_template

    model, processor = build(args.shape, args.device, dtype)
    # equal answer lengths: without an end-of-sequence id no answer ends early (the backend passes min_new_tokens=0
    # explicitly, so the checkpoint's min_new_tokens cannot be used for this)
    model.generation_config.eos_token_id = None
    prompts = make_pairs(args.pairs, args.image_size)
    config = GenerationConfig(max_new_tokens=args.new_tokens)
    candidates = list(get_template("T-IG-PAIR-QWEN").answer.candidates.values())
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "cpu"
    print(f"machine: {device_name} | torch {torch.__version__} | {args.shape} model, {model.num_parameters():,} params"
          f" | {dtype} | {args.pairs} pairs of two {args.image_size}px images")  # fmt: skip

    rows = []
    if not args.skip_upstream:
        # upstream: stock vision attention, no feature reuse, one pair per call
        one = TransformersBackend(model, processor, batch_size=1, fast_vision=False, reuse_vision_features=False)
        rows.append(("(a) upstream: 1 pair per generate", timed(lambda: one.generate(prompts, config), args.device,
                                                                 args.repeats)))  # fmt: skip
    batched = TransformersBackend(model, processor, batch_size=args.batch_size)
    rows.append((f"(b) batched generate, batch {args.batch_size}",
                 timed(lambda: batched.generate(prompts, config), args.device, args.repeats)))  # fmt: skip
    rows.append((f"(c) fast path (logits), batch {args.batch_size}",
                 timed(lambda: batched.score(prompts, candidates), args.device, args.repeats)))  # fmt: skip
    peak = None
    if args.max_rows > 0:
        scale = point_scale_prompts(prompts[: args.batch_size], processor)
        rows.append((f"(d) 0-100 scale, max_rows {args.max_rows}", timed(lambda: scale(model, args.max_rows),
                                                                       args.device, args.repeats)))  # fmt: skip
        peak = peak_memory(lambda: scale(model, args.max_rows), args.device)
    base = rows[0][1]
    print(f"{'method':<40} {'s/run':>8} {'pairs/s':>9} {'speedup':>8}")
    for name, seconds in rows:
        print(f"{name:<40} {seconds:>8.3f} {args.pairs / seconds:>9.2f} {base / seconds:>7.1f}x")
    if peak is not None:
        print(f"(d) peak memory above the model: {peak / 2**30:.2f} GiB ({min(args.batch_size, args.pairs)} prompts "
              f"x 101 candidates, max_rows {args.max_rows})")  # fmt: skip
    total, vision = vision_split(model, processor, prompts[: args.batch_size], args.device)
    print(f"one batched forward of {min(args.batch_size, args.pairs)} pairs: {total * 1e3:.1f} ms, vision tower "
          f"{vision * 1e3:.1f} ms ({100 * vision / total:.0f}%), language model {1e3 * (total - vision):.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
