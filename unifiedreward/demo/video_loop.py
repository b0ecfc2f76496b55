"""The video closed loop: the reward model the demo trained picks VideoDPO pairs that make a text-to-video model
draw what its captions say.

Stage ``video loop`` of ``python -m unifiedreward.demo`` (after the reward-model stage; ``--video_loop_only`` runs it
alone on a finished run's ``model/trained``). The same design as the diffusion loop
(:mod:`unifiedreward.demo.diffusion_loop`); every step after pre-training is the code of the ``VideoDPO/`` entry
points:

1. **Clips** (:func:`loop_clip_spec`): one object per clip; the attributes of ``--t2v_vary`` are drawn at random
   (default: the start colour and the colour change, the video attributes the demo's reward model learns to
   judge), the others fixed (a circle moving right, no change); three disjoint splits of the world's stream 23:
   ``pretrain`` (rendered clips + captions), ``sift`` (prompts) and ``heldout`` (prompts of the ground-truth rate).
2. **Base model** (:mod:`unifiedreward.demo.t2v`): a tiny AnimateDiff pipeline built from diffusers configs and
   pre-trained from scratch on the ``pretrain`` clips for a fixed number of steps; it draws the clips imperfectly.
3. **Candidates** (``data_generation.py``'s :func:`~unifiedreward.dpo.video_generate.run_generation`): mp4s,
   ``--t2v_num_videos`` per ``sift`` prompt, each with its recorded seed.
4. **Pairs** (``sift_dpo_data.py``'s :func:`~unifiedreward.dpo.video_sift.run_sift`) with the **trained reward
   model** judging the decoded clips (``--t2v_strategy``, default ``pointwise``: one checklist score per clip;
   frames upscaled to the reward model's video size; ``--t2v_pairs``, default ``all``: every pair of a caption's
   clips whose scores differ). Two controls from the same mp4s, ordered on their decoded pixels by
   :func:`clip_truth_score`: with every pair, :func:`every_pair_controls`; with ``best_worst``, the diffusion loop's
   (:func:`~unifiedreward.demo.diffusion_loop.control_pairs`: ``ground truth`` = the best vs the worst clip of every
   set whose clips differ in attributes right, ``random`` balanced).
5. **DPO** (``train.py``'s :func:`~unifiedreward.dpo.video_train.train`, family ``animatediff``: Diffusion-DPO on
   the v-prediction motion UNet, one noise draw and one timestep per pair) on each arm's pairs, from the same base
   model, with the same settings and the same number of steps (:func:`dpo_steps`).
6. **Ground-truth rate** (:func:`clip_alignment`): ``--t2v_eval_samples`` clips per ``heldout`` caption, drawn with
   the same seeds for every model, checked on the pixels by :func:`unifiedreward.synth.checks.check_clip`
   (colour, shape, direction, change); ``all`` = every attribute right.

The result goes into ``results.json`` (``video_loop``), ``results.md`` (table per arm and attribute) and
``video_loop.png`` (the frames of the same held-out captions before and after DPO on each arm).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from unifiedreward.demo.args import DemoArguments
from unifiedreward.demo.console import quiet, say
from unifiedreward.demo.diffusion_loop import ARMS, control_pairs, loop_table, pair_precision

__all__ = ["CLIP_ATTRIBUTES", "clip_alignment", "clip_truth_score", "dpo_steps", "every_pair_controls",
           "loop_clip_spec", "run_video_loop", "video_loop_table"]  # fmt: skip

#: The attributes the loop's ground-truth rate checks (``all``: every one right).
CLIP_ATTRIBUTES: tuple[str, ...] = ("color", "shape", "direction", "change", "all")
VARIABLE = ("color", "shape", "direction", "change")
_STREAM = 23
_SPLITS = {"pretrain": 0, "sift": 1, "heldout": 2}
#: The values of the attributes a loop does not vary (``--t2v_vary``); ``change``: none.
FIXED = {"color": "red", "shape": "circle", "direction": "right"}


def loop_clip_spec(seed: int, split: str, index: int, vary: Sequence[str] = VARIABLE) -> Any:
    """Clip ``index`` of a split and the random generator that renders it.

    ``vary``: the attributes drawn at random (``change``: a change to another colour with probability 1/2); the
    others are fixed (:data:`FIXED`, no change), so the captions state them but never tell two clips apart.
    """
    from unifiedreward.synth.world import COLORS, DIRECTIONS, SHAPES, MotionSpec, item_rng

    rng = item_rng(seed, _STREAM, _SPLITS[split], index)
    options = {"color": list(COLORS), "shape": list(SHAPES), "direction": list(DIRECTIONS)}
    values = {name: options[name][int(rng.integers(len(options[name])))] if name in vary else FIXED[name]
              for name in ("color", "shape", "direction")}  # fmt: skip
    end = None
    if "change" in vary and rng.random() < 0.5:
        others = [c for c in COLORS if c != values["color"]]
        end = others[int(rng.integers(len(others)))]
    return MotionSpec(values["color"], values["shape"], values["direction"], end), rng


def _verdict(frames: Any, spec: Any) -> dict[str, bool]:
    from unifiedreward.synth.checks import check_clip

    return check_clip(frames, spec)


def clip_truth_score(frames: Any, spec: Any) -> float:
    """The ground-truth ordering of candidate clips for a caption: attributes right (0-4, :func:`check_clip`), then,
    among clips with as many right, closer to the caption's colours (the mean of the first frame's distance to the
    start colour and the last frame's to the final colour, / 1000 < 0.5). A clip whose first or last frame shows no
    object scores -1."""
    import numpy as np

    from unifiedreward.synth.checks import detect_objects
    from unifiedreward.synth.world import COLORS

    frames = getattr(frames, "frames", frames)
    first, last = detect_objects(frames[0]), detect_objects(frames[-1])
    if first.count == 0 or last.count == 0:
        return -1.0
    distance = (np.linalg.norm(np.asarray(first.rgb) - np.asarray(COLORS[spec.color]))
                + np.linalg.norm(np.asarray(last.rgb) - np.asarray(COLORS[spec.final_color]))) / 2  # fmt: skip
    verdict = _verdict(frames, spec)
    return sum(verdict[name] for name in VARIABLE) - min(float(distance), 450) / 1000


def clip_alignment(pipe: Any, specs: Sequence[Any], *, samples: int, seed: int, size: int, frames: int, steps: int,
                   batch_size: int = 32, keep: int = 0) -> dict[str, Any]:  # fmt: skip
    """Ground-truth rate of the video ``pipe`` on ``specs``: ``samples`` clips per caption, clip ``j`` of caption
    ``i`` drawn with seed ``seed * 1_000_003 + i * 97 + j`` (the same for every model), checked on the pixels.

    Returns:
        ``{"rates": {attribute: share right}, "clips": [the first ``keep`` clips, uint8 [F, H, W, 3]]}``.
    """
    import torch

    from unifiedreward.dpo.video_generate import to_uint8

    jobs = [(i, j) for i in range(len(specs)) for j in range(samples)]
    right = dict.fromkeys(CLIP_ATTRIBUTES, 0)
    kept = []
    pipe.set_progress_bar_config(disable=True)
    for start in range(0, len(jobs), batch_size):
        part = jobs[start : start + batch_size]
        captions = [specs[i].caption() for i, _ in part]
        generators = [torch.Generator().manual_seed(seed * 1_000_003 + i * 97 + j) for i, j in part]
        videos = pipe(captions, num_frames=frames, height=size, width=size, num_inference_steps=steps,
                      guidance_scale=1.0, generator=generators, output_type="np").frames  # fmt: skip
        for (i, _), video in zip(part, videos, strict=True):
            clip = to_uint8(video)
            for name, ok in _verdict(clip, specs[i]).items():
                right[name] += ok
            if len(kept) < keep:
                kept.append(clip)
    return {"rates": {name: right[name] / max(1, len(jobs)) for name in CLIP_ATTRIBUTES}, "clips": kept}


def every_pair_controls(
    sets: Sequence[Mapping[str, Any]], scores: Mapping[str, Mapping[str, float]], rm_pairs: Sequence[Mapping[str, Any]],
    seed: int,
) -> dict[str, list[dict[str, Any]]]:  # fmt: skip
    """The control arms of every-pair sifting (``--t2v_pairs all``) from the generated sets (``data.json``).

    ``scores[id][video]``: :func:`clip_truth_score`. ``ground truth``: every pair of a set's clips that differ in
    attributes right (chosen: more right). ``random``: the reward-model arm's pairs (same clips, same count), each
    put in random order, balanced as in :func:`~unifiedreward.demo.diffusion_loop.control_pairs` (of the pairs that
    differ in attributes right, and of those that differ only in colour distance, exactly half keep the better
    clip as chosen), so the arm carries no information on the truth. Draws are seeded.
    """
    import itertools
    import math
    import random

    from unifiedreward.demo.policy_loop import balance_orientation

    truth_pairs = []
    for record in sets:
        values = scores[record["id"]]
        for a, b in itertools.combinations(record["videos"], 2):
            if math.ceil(values[a]) != math.ceil(values[b]):
                better, worse = (a, b) if values[a] > values[b] else (b, a)
                truth_pairs.append({"id": record["id"], "caption": record["caption"], "chosen": better,
                                    "rejected": worse})  # fmt: skip
    rng = random.Random(seed)
    shuffled: list[dict[str, Any]] = []
    strata: dict[bool, list[tuple[dict[str, Any], str, str]]] = {True: [], False: []}
    for source in rm_pairs:
        pair = {key: source[key] for key in ("id", "caption", "chosen", "rejected")}
        shuffled.append(pair)
        a, b = scores[pair["id"]][pair["chosen"]], scores[pair["id"]][pair["rejected"]]
        if a != b:
            better, worse = (pair["chosen"], pair["rejected"]) if a > b else (pair["rejected"], pair["chosen"])
            strata[math.ceil(a) != math.ceil(b)].append((pair, better, worse))
        elif rng.random() < 0.5:
            pair["chosen"], pair["rejected"] = pair["rejected"], pair["chosen"]
    balance_orientation([strata[True], strata[False]], rng)
    return {"ground truth": truth_pairs, "random": shuffled}


# ------------------------------------------------------------------------------------------------------------ run
def _sift(args: DemoArguments, data_file: Path, output: Path, reward_model: Path) -> dict[str, Any]:
    from unifiedreward.dpo.video_sift import VideoSiftArguments, run_sift

    sift_args = VideoSiftArguments(data_path=str(data_file), output_path=str(output), reward_model=str(reward_model),
                                   strategy=args.t2v_strategy, scoring="generate" if args.reasoning else None,
                                   num_frames=args.t2v_frames, judge_batch_size=args.eval_batch_size,
                                   judge_max_new_tokens=args.max_new_tokens, min_margin=args.t2v_min_margin,
                                   pairs=args.t2v_pairs, seed=args.seed, dtype="float32", chunk_size=32,
                                   num_workers=1, overwrite=True,
                                   min_side=args.video_size, progress=True)  # fmt: skip
    return run_sift(sift_args)


def _write_pairs(path: Path, pairs: Sequence[Mapping[str, Any]]) -> None:
    """A control arm as ``sift_dpo_data.py``'s ``dpo_data.json`` (``caption``, ``chosen``, ``rejected``)."""
    from unifiedreward.io.files import write_json_atomic

    write_json_atomic(path, [{"id": p["id"], "caption": p["caption"], "chosen": p["chosen"],
                              "rejected": p["rejected"]} for p in pairs])  # fmt: skip


def dpo_steps(args: DemoArguments, pairs: int) -> int:
    """Diffusion-DPO steps of every arm: ``--t2v_dpo_epochs`` over the reward-model arm's ``pairs`` (the controls
    train as many steps, so the arms compare at equal compute)."""
    import math

    return max(1, math.ceil(args.t2v_dpo_epochs * pairs / min(args.t2v_dpo_batch, max(1, pairs))))


def _dpo(args: DemoArguments, base: Path, data_file: Path, videos: Path, output: Path, pairs: int, steps: int,
         latents: Path | None = None) -> dict[str, Any]:  # fmt: skip
    from unifiedreward.dpo.video_args import VideoDPOArguments
    from unifiedreward.dpo.video_train import train

    batch = min(args.t2v_dpo_batch, pairs)
    dpo_args = VideoDPOArguments(model=str(base), data_path=str(data_file), output_dir=str(output),
                                 video_folder=str(videos), family="animatediff", num_frames=args.t2v_frames,
                                 height=args.t2v_size, width=args.t2v_size, beta=args.t2v_beta,
                                 learning_rate=args.t2v_dpo_lr, lr_scheduler="constant", weight_decay=0.0,
                                 train_batch_size=batch, max_train_steps=steps, checkpointing_steps=0,
                                 resume_from_checkpoint="none", seed=args.seed, logging_steps=10**9,
                                 use_ema=args.t2v_ema_decay > 0, ema_decay=args.t2v_ema_decay,
                                 cache_latents=latents is not None,
                                 latent_cache_dir=str(latents) if latents else None)  # fmt: skip
    result = train(dpo_args)
    history = result["history"]
    return {"steps": result["global_step"], "seconds": round(result["seconds"], 1),
            "first_loss": history[0]["loss"] if history else None,
            "last_loss": sum(r["loss"] for r in history[-10:]) / max(1, len(history[-10:]))}  # fmt: skip


def _pretrain(args: DemoArguments, base: Path, vary: Sequence[str]) -> dict[str, Any]:
    """Build and pre-train the base model, or reuse the one in ``base`` made with the same settings."""
    from unifiedreward.demo.t2i import pretrain
    from unifiedreward.demo.t2v import build_video_pipeline, clip_batch, render_small_clip
    from unifiedreward.io.files import write_json_atomic

    settings = {"seed": args.seed, "size": args.t2v_size, "frames": args.t2v_frames, "clips": args.t2v_pretrain_clips,
                "vae_steps": args.t2v_vae_steps, "unet_steps": args.t2v_unet_steps, "batch": args.t2v_pretrain_batch,
                "vary": list(vary)}  # fmt: skip
    record = base / "pretrain.json"
    previous = json.loads(record.read_text(encoding="utf-8")) if record.is_file() else None
    if previous is not None and previous["settings"] == settings:
        say(f"video loop: reusing the pre-trained text-to-video model in {base}")
        return previous["history"]
    clips = [loop_clip_spec(args.seed, "pretrain", i, vary) for i in range(args.t2v_pretrain_clips)]
    frames = [render_small_clip(spec, rng, args.t2v_size, args.t2v_frames) for spec, rng in clips]
    build_video_pipeline(base, size=args.t2v_size, seed=args.seed)
    say(f"video loop: pre-training a {args.t2v_size}px {args.t2v_frames}-frame text-to-video model on {len(clips)} "
         f"clips ({args.t2v_vae_steps} autoencoder + {args.t2v_unet_steps} UNet steps)")  # fmt: skip
    history = pretrain(base, clip_batch(frames), [spec.caption() for spec, _ in clips], vae_steps=args.t2v_vae_steps,
                       unet_steps=args.t2v_unet_steps, batch_size=args.t2v_pretrain_batch, seed=args.seed)  # fmt: skip
    write_json_atomic(record, {"settings": settings, "history": history})
    return history


def run_video_loop(args: DemoArguments, out: Path, reward_model: Path) -> dict[str, Any]:
    """The video closed loop (module docstring) under ``out / "video_loop"``; returns its summary."""
    from diffusers import DiffusionPipeline

    from unifiedreward.dpo.video_generate import GenerationArguments, run_generation
    from unifiedreward.dpo.video_inference import load_trained_video_pipeline
    from unifiedreward.io.files import write_json_atomic
    from unifiedreward.media import load_video

    began = time.perf_counter()
    folder = out / "video_loop"
    timings: dict[str, float] = {}
    size, frames = args.t2v_size, args.t2v_frames
    vary = tuple(args.t2v_vary.split(","))
    if not vary or not set(vary) <= set(VARIABLE):
        raise ValueError(f"--t2v_vary: a comma-separated subset of {','.join(VARIABLE)}, got {args.t2v_vary!r}")

    t = time.perf_counter()
    base = folder / "base"
    history = _pretrain(args, base, vary)
    timings["pretrain"] = round(time.perf_counter() - t, 1)

    heldout = [loop_clip_spec(args.seed, "heldout", i, vary)[0] for i in range(args.t2v_eval_prompts)]
    measure = dict(samples=args.t2v_eval_samples, seed=args.seed, size=size, frames=frames, steps=args.t2v_steps)
    t = time.perf_counter()
    before = clip_alignment(DiffusionPipeline.from_pretrained(str(base)), heldout, keep=6, **measure)
    timings["eval before"] = round(time.perf_counter() - t, 1)
    say("video loop: base model's ground-truth rate " + _rates(before["rates"]))

    t = time.perf_counter()
    sift_specs = {f"s{i}": loop_clip_spec(args.seed, "sift", i, vary)[0] for i in range(args.t2v_num_prompts)}
    prompts = folder / "data" / "prompts.json"
    prompts.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(prompts, [{"id": key, "prompt": spec.caption()} for key, spec in sift_specs.items()])
    gen_dir = folder / "generated"
    quiet()
    run_generation(GenerationArguments(model=str(base), prompts_file=str(prompts), output_dir=str(gen_dir),
                                       num_videos=args.t2v_num_videos, num_frames=frames, height=size, width=size,
                                       num_inference_steps=args.t2v_steps, guidance_scale=1.0, seed=args.seed,
                                       batch_size=32, dtype="float32", device="cpu", chunk_size=8,
                                       overwrite=True))  # fmt: skip
    timings["generate"] = round(time.perf_counter() - t, 1)

    t = time.perf_counter()
    sets = json.loads((gen_dir / "data.json").read_text(encoding="utf-8"))
    scores = {r["id"]: {name: clip_truth_score(load_video(gen_dir / name), sift_specs[r["id"]]) for name in r["videos"]}
              for r in sets}  # fmt: skip
    pair_files = {name: folder / "pairs" / f"{name.replace(' ', '_')}.json" for name in ARMS}
    summary = _sift(args, gen_dir / "data.json", pair_files["reward model"], reward_model)
    decisions = pair_files["reward model"].with_name("reward_model.decisions.jsonl")
    kept = {line["id"] for line in map(json.loads, decisions.read_text(encoding="utf-8").splitlines()) if line.get("kept")}
    rm_pairs = [{"id": r["id"], "caption": r["caption"], "chosen": r["chosen"], "rejected": r["rejected"]}
                for r in json.loads(pair_files["reward model"].read_text(encoding="utf-8"))]  # fmt: skip
    in_order = {r["id"]: [scores[r["id"]][name] for name in r["videos"]] for r in sets}
    if args.t2v_pairs == "all":
        controls = every_pair_controls(sets, scores, rm_pairs, args.seed)
    else:
        controls = control_pairs(sets, in_order, kept, args.seed, media="videos")
    for name, pairs in controls.items():
        _write_pairs(pair_files[name], pairs)
    arms = {"reward model": rm_pairs, **controls}
    timings["sift"] = round(time.perf_counter() - t, 1)
    say(f"video loop: sift kept {summary['kept']} of {summary['inputs']} prompts ({summary['judge_calls']} judge "
         "calls); pairs: " + ", ".join(f"{k} {len(v)}" for k, v in arms.items()))  # fmt: skip

    results: dict[str, Any] = {}
    strip = {"before": before["clips"]}
    latents = folder / "latents"  # the candidates' VAE latents, shared by the arms (same base model and clips)
    shutil.rmtree(latents, ignore_errors=True)
    steps = dpo_steps(args, len(rm_pairs))
    for name, pairs in arms.items():
        t = time.perf_counter()
        slug = name.replace(" ", "_")
        entry: dict[str, Any] = {"pairs": len(pairs), **pair_precision(pairs, scores)}
        if len(pairs) >= 2:
            entry.update(_dpo(args, base, pair_files[name], gen_dir, folder / "dpo" / slug, len(pairs), steps,
                              latents))  # fmt: skip
            after = clip_alignment(load_trained_video_pipeline(folder / "dpo" / slug), heldout, keep=6, **measure)
        else:
            after = before
        strip[name] = after["clips"]
        entry.update(rates=after["rates"], gains={k: after["rates"][k] - before["rates"][k] for k in CLIP_ATTRIBUTES},
                     seconds=round(time.perf_counter() - t, 1))  # fmt: skip
        results[name] = entry
        say(f"video loop: DPO on {name} pairs ({len(pairs)}): " + _rates(after["rates"]))
    timings["dpo"] = round(sum(r["seconds"] for r in results.values()), 1)
    loop = {
        "size": size,
        "frames": frames,
        "vary": list(vary),
        "attributes": list(CLIP_ATTRIBUTES),
        "strategy": args.t2v_strategy,
        "pair_mode": args.t2v_pairs,
        "dpo_steps": steps,
        "dpo_ema_decay": args.t2v_ema_decay,
        "reward_model": str(reward_model),
        "heldout_prompts": len(heldout),
        "eval_samples": args.t2v_eval_samples,
        "pretrain_loss": {"vae": history["vae"][-1] if history["vae"] else None,
                          "unet": history["unet"][-1] if history["unet"] else None},
        "before": before["rates"],
        "sift": {k: summary[k] for k in ("inputs", "kept", "dropped", "judge_calls") if k in summary},
        "arms": results,
        "stages": timings,
        "seconds": round(time.perf_counter() - began, 1),
    }
    write_json_atomic(folder / "results.json", loop)
    _save_strip(strip, heldout, folder / "strip.png")
    return loop


def _rates(rates: Mapping[str, float]) -> str:
    return ", ".join(f"{name} {rates[name]:.1%}" for name in CLIP_ATTRIBUTES)


def _save_strip(strip: Mapping[str, Sequence[Any]], specs: Sequence[Any], path: Path) -> None:
    """Rows: before and each arm; columns: the first held-out captions (first sample each), every frame side by
    side, 4x enlarged; captions in ``strip.txt``."""
    import numpy as np
    from PIL import Image

    rows = [name for name in ("before", *ARMS) if strip.get(name)]
    if not rows:
        return
    columns = min(len(strip[name]) for name in rows)
    frames, side = strip[rows[0]][0].shape[:2]
    cell_w, cell_h = frames * side * 4, side * 4
    canvas = Image.new("RGB", (columns * (cell_w + 8), len(rows) * (cell_h + 4)), (255, 255, 255))
    for r, name in enumerate(rows):
        for c in range(columns):
            clip = Image.fromarray(np.concatenate(list(strip[name][c]), axis=1))
            canvas.paste(clip.resize((cell_w, cell_h), Image.NEAREST), (c * (cell_w + 8), r * (cell_h + 4)))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    path.with_suffix(".txt").write_text("rows: " + ", ".join(rows) + "\ncolumns: "
                                        + " | ".join(s.caption() for s in specs[:columns]) + "\n")  # fmt: skip


def video_loop_table(loop: Mapping[str, Any]) -> str:
    """The video loop's markdown table: ground-truth rate per attribute before / after DPO on each arm."""
    pairs = {"all": "every pair of clips whose scores differ", "best_worst": "best vs worst clip"}
    mode = f" ({pairs[loop['pair_mode']]})" if loop.get("pair_mode") in pairs else ""
    steps = f", {loop['dpo_steps']} DPO steps per arm" if loop.get("dpo_steps") else ""
    title = (f"Video loop ({loop['size']}px {loop['frames']}-frame text-to-video model (AnimateDiff), "
             f"{loop['heldout_prompts']} held-out captions x {loop['eval_samples']} clips, pairs by "
             f"`{loop['strategy']}` sifting{mode}{steps}; {loop['seconds']:.0f} s): ground-truth rate checked on "
             "the pixels (change in points).")  # fmt: skip
    return loop_table(loop, title, CLIP_ATTRIBUTES)
