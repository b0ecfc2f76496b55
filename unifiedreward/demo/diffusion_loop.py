"""The diffusion closed loop: the reward model the demo trained picks Diffusion-DPO pairs that make a text-to-image
model draw what its captions say.

Stage ``diffusion loop`` of ``python -m unifiedreward.demo`` (after the reward-model stage; ``--diffusion_loop_only``
runs it alone on a finished run's ``model/trained``). Every step after pre-training is the code of the
``DiffusionDPO/`` entry points:

1. **Scenes** (:func:`loop_spec`): one object per scene; the attributes of ``--t2i_vary`` are drawn at random
   (default: colour, the attribute the demo's reward model learns to judge), the others fixed (a red circle on the
   left); three disjoint splits of the world's stream 22: ``pretrain`` (rendered images + captions), ``sift``
   (prompts) and ``heldout`` (prompts of the ground-truth rate).
2. **Base model** (:mod:`unifiedreward.demo.t2i`): a tiny SD-style pipeline built from diffusers configs and
   pre-trained from scratch on the ``pretrain`` scenes for a fixed number of steps; it draws the scenes imperfectly.
3. **Candidates** (``data_generation.py``'s :func:`~unifiedreward.dpo.diffusion_generate.run_generation`):
   ``--t2i_num_images`` images per ``sift`` prompt, each with its recorded seed.
4. **Pairs** (``sift_dpo_data.py``'s :func:`~unifiedreward.dpo.diffusion_sift.run_sift`) with the **trained reward
   model** (``--t2i_strategy``). Two controls from the same candidates (:func:`control_pairs`), ordered on the
   pixels by :func:`truth_score` (attributes right by :func:`unifiedreward.synth.checks.check_scene`, then the
   distance to the caption's colour): ``ground truth`` (the best vs the worst image of every set whose images differ
   in attributes right: the ceiling) and
   ``random`` (two images of a set the reward model kept, in random order, balanced so that exactly half of the
   pairs whose truth differs prefer the better one, as in :mod:`unifiedreward.demo.policy_loop`).
5. **DPO** (``train.py``'s :func:`~unifiedreward.dpo.diffusion_train.train`, Diffusion-DPO on the v-prediction
   UNet) on each arm's pairs, from the same base model, with the same settings.
6. **Ground-truth rate** (:func:`alignment`): ``--t2i_eval_samples`` images per ``heldout`` caption, drawn with
   the same seeds for every model, checked attribute by attribute on the pixels; ``all`` = every attribute right.

The result goes into ``results.json`` (``diffusion_loop``), ``results.md`` (table per arm and attribute) and
``diffusion_loop.png`` (the same held-out captions before and after DPO on each arm).
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from unifiedreward.demo.args import DemoArguments
from unifiedreward.demo.console import quiet, say
from unifiedreward.demo.policy_loop import balance_orientation

__all__ = ["ARMS", "LOOP_ATTRIBUTES", "alignment", "control_pairs", "diffusion_loop_table", "loop_spec",
           "loop_table", "pair_precision", "run_diffusion_loop"]  # fmt: skip

#: The attributes the loop's captions vary and its ground-truth rate checks (``all``: every one right).
LOOP_ATTRIBUTES: tuple[str, ...] = ("color", "shape", "position", "all")
ARMS = ("reward model", "ground truth", "random")
_STREAM = 22
_SPLITS = {"pretrain": 0, "sift": 1, "heldout": 2}
#: The values of the attributes a loop does not vary (``--t2i_vary``).
FIXED = {"color": "red", "shape": "circle", "position": "left"}


def loop_spec(seed: int, split: str, index: int, vary: Sequence[str] = ("color", "shape", "position")) -> Any:
    """Scene ``index`` of a split (one object) and the random generator that renders it.

    ``vary``: the attributes drawn at random; the others are fixed (:data:`FIXED`), so the captions state them but
    never tell two scenes apart.
    """
    from unifiedreward.synth.world import COLORS, POSITIONS, SHAPES, SceneSpec, item_rng

    rng = item_rng(seed, _STREAM, _SPLITS[split], index)
    options = {"color": list(COLORS), "shape": list(SHAPES), "position": list(POSITIONS)}
    values = {name: options[name][int(rng.integers(len(options[name])))] if name in vary else FIXED[name]
              for name in ("color", "shape", "position")}  # fmt: skip
    return SceneSpec(values["color"], values["shape"], 1, values["position"]), rng


def _verdict(image: Any, spec: Any) -> dict[str, bool]:
    from unifiedreward.synth.checks import check_scene

    verdict = check_scene(image, spec)
    verdict["all"] = all(verdict[name] for name in LOOP_ATTRIBUTES if name != "all")
    return {name: verdict[name] for name in LOOP_ATTRIBUTES}


def truth_score(image: Any, spec: Any) -> float:
    """The ground-truth ordering of candidate images for a caption: attributes right (0-3), then, among images with
    as many right, closer to the caption's base colour (mean RGB of the object pixels; distance / 1000 < 0.5).
    An image with no object scores -1."""
    import numpy as np

    from unifiedreward.synth.checks import detect_objects
    from unifiedreward.synth.world import COLORS

    found = detect_objects(image)
    if found.count == 0:
        return -1.0
    distance = float(np.linalg.norm(np.asarray(found.rgb) - np.asarray(COLORS[spec.color])))
    return sum(_verdict(image, spec)[name] for name in LOOP_ATTRIBUTES if name != "all") - min(distance, 450) / 1000


# ------------------------------------------------------------------------------------------------------ controls
def control_pairs(sets: Sequence[Mapping[str, Any]], scores: Mapping[str, Sequence[float]], kept: set[str],
                  seed: int, *, media: str = "images") -> dict[str, list[dict[str, Any]]]:  # fmt: skip
    """The control arms from the generated sets (``data_generation.py``'s ``data.json`` records; their candidates
    under ``media``: ``images``, or ``videos`` for VideoDPO's).

    ``scores[id][j]``: the :func:`truth_score` of image ``j`` (on the pixels). ``ground truth``: for every set whose
    images differ in attributes right (what the ground-truth rate counts), the image with the highest score (chosen)
    vs the one with the lowest (ties in attributes right broken by the distance to the caption's colour); sets whose
    images are all equally right give no pair: their colour distances are differences the rate cannot see, and as
    pairs they dilute the arm (docs/demo.md). ``random``: for every
    set the reward model kept (``kept``), two random images in random order, the order balanced: of the pairs that
    differ in attributes right, and of those that differ only in colour distance, exactly half each (a random half;
    odd counts: the last by a coin) have the better image as chosen, so the arm carries no information on the
    truth. Pairs are ``{"id", "caption", "chosen", "rejected"}``
    (image names); draws are seeded.
    """
    rng = random.Random(seed)
    arms: dict[str, list[dict[str, Any]]] = {"ground truth": [], "random": []}
    strata: dict[bool, list[tuple[dict[str, Any], str, str]]] = {True: [], False: []}
    for record in sets:
        names, values = record[media], scores[record["id"]]
        if len(names) < 2:
            continue
        best, worst = max(values), min(values)
        if math.ceil(best) != math.ceil(worst):
            chosen = rng.choice([n for n, v in zip(names, values, strict=True) if v == best])
            rejected = rng.choice([n for n, v in zip(names, values, strict=True) if v == worst])
            arms["ground truth"].append({"id": record["id"], "caption": record["caption"], "chosen": chosen,
                                         "rejected": rejected})  # fmt: skip
        if record["id"] in kept:
            first, second = rng.sample(range(len(names)), 2)
            pair = {"id": record["id"], "caption": record["caption"], "chosen": names[first],
                    "rejected": names[second]}  # fmt: skip
            arms["random"].append(pair)
            if values[first] != values[second]:
                good, bad = (first, second) if values[first] > values[second] else (second, first)
                # strata: pairs that differ in attributes right, pairs that differ only in colour distance
                strata[math.ceil(values[first]) != math.ceil(values[second])].append((pair, names[good], names[bad]))
    balance_orientation([strata[True], strata[False]], rng)
    return arms


def _write_arm(folder: Path, pairs: Sequence[Mapping[str, Any]], images: Path) -> None:
    """``dpo_data.json`` + ``images_dpo/`` in ``sift_dpo_data.py``'s format for ``pairs`` of images in ``images``."""
    from unifiedreward.dpo.diffusion_data import DPO_DATA_FILE, DPO_IMAGE_DIR
    from unifiedreward.io.files import write_json_atomic

    (folder / DPO_IMAGE_DIR).mkdir(parents=True, exist_ok=True)
    records = []
    for pair in pairs:
        for role in ("chosen", "rejected"):
            shutil.copyfile(images / pair[role], folder / DPO_IMAGE_DIR / pair[role])
        records.append({"id": pair["id"], "caption": pair["caption"], "jpg_0": pair["chosen"],
                        "jpg_1": pair["rejected"], "label_0": 1})  # fmt: skip
    write_json_atomic(folder / DPO_DATA_FILE, records)


def pair_precision(pairs: Sequence[Mapping[str, Any]], scores: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    """``right`` (chosen has more attributes right on the pixels), ``reversed``, ``same``; ``precision`` = right /
    (right + reversed). ``scores[id][image name]``: :func:`truth_score` (its ceiling = attributes right)."""
    counts = {"right": 0, "reversed": 0, "same": 0}
    for pair in pairs:
        chosen = math.ceil(scores[pair["id"]][pair["chosen"]])
        rejected = math.ceil(scores[pair["id"]][pair["rejected"]])
        counts["right" if chosen > rejected else "reversed" if chosen < rejected else "same"] += 1
    informative = counts["right"] + counts["reversed"]
    return {**counts, "precision": counts["right"] / informative if informative else None}


# ------------------------------------------------------------------------------------------------------ alignment
def alignment(pipe: Any, specs: Sequence[Any], *, samples: int, seed: int, size: int, steps: int,
              batch_size: int = 64, keep: int = 0) -> dict[str, Any]:  # fmt: skip
    """Ground-truth rate of ``pipe`` on ``specs``: ``samples`` images per caption, image ``j`` of caption ``i``
    drawn with seed ``seed * 1_000_003 + i * 97 + j`` (the same for every model), checked on the pixels.

    Returns:
        ``{"rates": {attribute: share right}, "images": [the first ``keep`` images]}``.
    """
    import torch

    jobs = [(i, j) for i in range(len(specs)) for j in range(samples)]
    right = dict.fromkeys(LOOP_ATTRIBUTES, 0)
    kept = []
    pipe.set_progress_bar_config(disable=True)
    for start in range(0, len(jobs), batch_size):
        part = jobs[start : start + batch_size]
        captions = [specs[i].caption() for i, _ in part]
        generators = [torch.Generator().manual_seed(seed * 1_000_003 + i * 97 + j) for i, j in part]
        images = pipe(captions, num_inference_steps=steps, guidance_scale=1.0, generator=generators, height=size,
                      width=size).images  # fmt: skip
        for (i, _), image in zip(part, images, strict=True):
            for name, ok in _verdict(image, specs[i]).items():
                right[name] += ok
            if len(kept) < keep:
                kept.append(image)
    return {"rates": {name: right[name] / max(1, len(jobs)) for name in LOOP_ATTRIBUTES}, "images": kept}


# ------------------------------------------------------------------------------------------------------------ run
def _sift(args: DemoArguments, gen_dir: Path, out_dir: Path, reward_model: Path) -> dict[str, Any]:
    from unifiedreward.dpo.diffusion_sift import SiftArguments, run_sift

    sift_args = SiftArguments(data_dir=str(gen_dir), output_dir=str(out_dir), reward_model=str(reward_model),
                              strategy=args.t2i_strategy, scoring="generate" if args.reasoning else None,
                              judge_batch_size=args.eval_batch_size, judge_max_new_tokens=args.max_new_tokens,
                              seed=args.seed, dtype="float32", chunk_size=64, num_workers=1, overwrite=True,
                              min_side=args.image_size)  # fmt: skip
    return run_sift(sift_args)


def _dpo(args: DemoArguments, base: Path, dataset: Path, output: Path, pairs: int) -> dict[str, Any]:
    import math

    from unifiedreward.dpo.diffusion_args import DiffusionDPOArguments
    from unifiedreward.dpo.diffusion_train import train

    batch = min(args.t2i_dpo_batch, pairs)
    steps = max(1, math.ceil(args.t2i_dpo_epochs * pairs / batch))

    dpo_args = DiffusionDPOArguments(pretrained_model=str(base), dataset_dir=str(dataset), output_dir=str(output),
                                     resolution=args.t2i_size, hflip=False, beta_dpo=args.t2i_beta,
                                     learning_rate=args.t2i_dpo_lr, lr_scheduler="constant", weight_decay=0.0,
                                     train_batch_size=batch, max_train_steps=steps,
                                     timesteps="uniform", checkpointing_steps=0, seed=args.seed)  # fmt: skip
    result = train(dpo_args)
    history = result["history"]
    return {"steps": result["global_step"], "seconds": round(result["seconds"], 1),
            "first_loss": history[0]["loss"] if history else None,
            "last_loss": sum(r["loss"] for r in history[-10:]) / max(1, len(history[-10:]))}  # fmt: skip


def run_diffusion_loop(args: DemoArguments, out: Path, reward_model: Path) -> dict[str, Any]:
    """The diffusion closed loop (module docstring) under ``out / "diffusion_loop"``; returns its summary."""
    from unifiedreward.demo.t2i import build_pipeline, pretrain, render_small, scene_batch
    from unifiedreward.dpo.diffusion_generate import GenerationArguments, run_generation
    from unifiedreward.dpo.diffusion_inference import load_trained_pipeline
    from unifiedreward.io.files import read_jsonl, write_json_atomic

    began = time.perf_counter()
    folder = out / "diffusion_loop"
    timings: dict[str, float] = {}
    size = args.t2i_size
    vary = tuple(args.t2i_vary.split(","))
    if not vary or not set(vary) <= {"color", "shape", "position"}:
        raise ValueError(f"--t2i_vary: a comma-separated subset of color,shape,position, got {args.t2i_vary!r}")

    t = time.perf_counter()
    base = folder / "base"
    settings = {"seed": args.seed, "size": size, "scenes": args.t2i_pretrain_scenes, "vae_steps": args.t2i_vae_steps,
                "unet_steps": args.t2i_unet_steps, "vary": list(vary)}  # fmt: skip
    record = base / "pretrain.json"
    previous = json.loads(record.read_text(encoding="utf-8")) if record.is_file() else None
    if previous is not None and previous["settings"] == settings:
        say(f"diffusion loop: reusing the pre-trained text-to-image model in {base}")
        history = previous["history"]
    else:
        scenes = [loop_spec(args.seed, "pretrain", i, vary) for i in range(args.t2i_pretrain_scenes)]
        images = [render_small(spec, rng, size) for spec, rng in scenes]
        build_pipeline(base, size=size, seed=args.seed)
        say(f"diffusion loop: pre-training a {size}px text-to-image model on {len(images)} scenes "
             f"({args.t2i_vae_steps} autoencoder + {args.t2i_unet_steps} UNet steps)")  # fmt: skip
        history = pretrain(base, scene_batch(images), [spec.caption() for spec, _ in scenes],
                           vae_steps=args.t2i_vae_steps, unet_steps=args.t2i_unet_steps, seed=args.seed)  # fmt: skip
        write_json_atomic(record, {"settings": settings, "history": history})
    timings["pretrain"] = round(time.perf_counter() - t, 1)

    heldout = [loop_spec(args.seed, "heldout", i, vary)[0] for i in range(args.t2i_eval_prompts)]
    measure = dict(samples=args.t2i_eval_samples, seed=args.seed, size=size, steps=args.t2i_steps)
    t = time.perf_counter()
    from diffusers import DiffusionPipeline

    before = alignment(DiffusionPipeline.from_pretrained(str(base)), heldout, keep=8, **measure)
    timings["eval before"] = round(time.perf_counter() - t, 1)
    say("diffusion loop: base model's ground-truth rate " + _rates(before["rates"]))

    t = time.perf_counter()
    sift_specs = {f"s{i}": loop_spec(args.seed, "sift", i, vary)[0] for i in range(args.t2i_num_prompts)}
    prompts = folder / "data" / "prompts.json"
    prompts.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(prompts, [{"id": key, "prompt": spec.caption()} for key, spec in sift_specs.items()])
    gen_dir = folder / "generated"
    quiet()
    run_generation(GenerationArguments(data_path=str(prompts), output_dir=str(gen_dir), pretrained_model=str(base),
                                       num_images=args.t2i_num_images, num_inference_steps=args.t2i_steps,
                                       guidance_scale=1.0, height=size, width=size, seed=args.seed,
                                       images_per_call=args.t2i_num_images, chunk_size=32, overwrite=True))  # fmt: skip
    timings["generate"] = round(time.perf_counter() - t, 1)

    t = time.perf_counter()
    from PIL import Image

    sets = json.loads((gen_dir / "data.json").read_text(encoding="utf-8"))
    scores = {r["id"]: {name: truth_score(Image.open(gen_dir / "images" / name), sift_specs[r["id"]])
                        for name in r["images"]} for r in sets}  # fmt: skip
    arm_dirs = {name: folder / "pairs" / name.replace(" ", "_") for name in ARMS}
    summary = _sift(args, gen_dir, arm_dirs["reward model"], reward_model)
    decisions = read_jsonl(arm_dirs["reward model"] / "sift.decisions.jsonl")
    kept = {line["id"] for line in decisions if line.get("kept")}
    rm_pairs = _reward_model_pairs(arm_dirs["reward model"], sets)
    in_order = {r["id"]: [scores[r["id"]][name] for name in r["images"]] for r in sets}
    controls = control_pairs(sets, in_order, kept, args.seed)
    for name, pairs in controls.items():
        _write_arm(arm_dirs[name], pairs, gen_dir / "images")
    arms = {"reward model": rm_pairs, **controls}
    timings["sift"] = round(time.perf_counter() - t, 1)
    say(f"diffusion loop: sift kept {summary['kept']} of {summary['inputs']} prompts "
         f"({summary['judge_calls']} judge calls); pairs: " + ", ".join(f"{k} {len(v)}" for k, v in arms.items()))  # fmt: skip

    results: dict[str, Any] = {}
    grid = {"before": before["images"]}
    for name, pairs in arms.items():
        t = time.perf_counter()
        slug = name.replace(" ", "_")
        entry: dict[str, Any] = {"pairs": len(pairs), **pair_precision(pairs, scores)}
        if len(pairs) >= 2:
            entry.update(_dpo(args, base, arm_dirs[name], folder / "dpo" / slug, len(pairs)))
            after = alignment(load_trained_pipeline(folder / "dpo" / slug), heldout, keep=8, **measure)
        else:
            after = before
        grid[name] = after["images"]
        entry.update(rates=after["rates"], gains={k: after["rates"][k] - before["rates"][k] for k in LOOP_ATTRIBUTES},
                     seconds=round(time.perf_counter() - t, 1))  # fmt: skip
        results[name] = entry
        say(f"diffusion loop: DPO on {name} pairs ({len(pairs)}): " + _rates(after["rates"]))
    timings["dpo"] = round(sum(r["seconds"] for r in results.values()), 1)
    loop = {
        "size": size,
        "vary": list(vary),
        "strategy": args.t2i_strategy,
        "reward_model": str(reward_model),
        "heldout_prompts": len(heldout),
        "eval_samples": args.t2i_eval_samples,
        "pretrain_loss": {"vae": history["vae"][-1] if history["vae"] else None,
                          "unet": history["unet"][-1] if history["unet"] else None},
        "before": before["rates"],
        "sift": {k: summary[k] for k in ("inputs", "kept", "dropped", "judge_calls") if k in summary},
        "arms": results,
        "stages": timings,
        "seconds": round(time.perf_counter() - began, 1),
    }
    write_json_atomic(folder / "results.json", loop)
    _save_grid(grid, heldout[:8], folder / "grid.png")
    return loop


def _reward_model_pairs(folder: Path, sets: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The reward model's pairs (``dpo_data.json``) as image names of the generated sets (via the recorded seeds)."""
    from unifiedreward.dpo.diffusion_data import DPO_DATA_FILE

    by_id = {r["id"]: r for r in sets}
    pairs = []
    for record in json.loads((folder / DPO_DATA_FILE).read_text(encoding="utf-8")):
        source = by_id[record["id"]]
        names = dict(zip(source["seeds"], source["images"], strict=True))
        pairs.append({"id": record["id"], "caption": record["caption"], "chosen": names[record["chosen_seed"]],
                      "rejected": names[record["rejected_seed"]]})  # fmt: skip
    return pairs


def _rates(rates: Mapping[str, float]) -> str:
    return ", ".join(f"{name} {rates[name]:.1%}" for name in LOOP_ATTRIBUTES)


def _save_grid(grid: Mapping[str, Sequence[Any]], specs: Sequence[Any], path: Path) -> None:
    """Rows: before and each arm; columns: the first held-out captions (first sample each), 4x enlarged."""
    from PIL import Image

    rows = [name for name in ("before", *ARMS) if grid.get(name)]
    if not rows:
        return
    cell = grid[rows[0]][0].size[0] * 4
    columns = min(len(grid[name]) for name in rows)
    canvas = Image.new("RGB", (columns * (cell + 4), len(rows) * (cell + 4)), (255, 255, 255))
    for r, name in enumerate(rows):
        for c in range(columns):
            canvas.paste(grid[name][c].resize((cell, cell), Image.NEAREST), (c * (cell + 4), r * (cell + 4)))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    (path.with_suffix(".txt")).write_text("rows: " + ", ".join(rows) + "\ncolumns: "
                                          + " | ".join(s.caption() for s in specs[:columns]) + "\n")  # fmt: skip


def loop_table(loop: Mapping[str, Any], title: str, attributes: Sequence[str]) -> str:
    """A closed loop's markdown table under ``title``: ground-truth rate per attribute before / after DPO on each
    arm (the diffusion and the video loop)."""
    lines = [
        title,
        "",
        f"| model | pairs | pair precision vs truth | {' | '.join(attributes)} |",
        "|---|---:|---:|" + "---:|" * len(attributes),
        "| base (before DPO) | - | - | " + " | ".join(f"{loop['before'][k]:.1%}" for k in attributes) + " |",
    ]
    for name in ARMS:
        arm = loop["arms"].get(name)
        if arm is None:
            continue
        precision = "-" if arm.get("precision") is None else f"{arm['precision']:.1%}"
        cells = " | ".join(f"{arm['rates'][k]:.1%} ({arm['gains'][k] * 100:+.1f})" for k in attributes)
        lines.append(f"| DPO: {name} | {arm['pairs']} | {precision} | {cells} |")
    return "\n".join(lines)


def diffusion_loop_table(loop: Mapping[str, Any]) -> str:
    """The diffusion loop's markdown table: ground-truth rate per attribute before / after DPO on each arm."""
    title = (f"Diffusion loop ({loop['size']}px text-to-image model, {loop['heldout_prompts']} held-out captions x "
             f"{loop['eval_samples']} images, pairs by `{loop['strategy']}` sifting; {loop['seconds']:.0f} s): "
             "ground-truth rate checked on the pixels (change in points).")  # fmt: skip
    return loop_table(loop, title, LOOP_ATTRIBUTES)
