"""Training records of the world in the released formats, and the ``train_data.yaml`` mixture that reads them.

One JSON list per task x mode in the released LLaVA ``conversations`` format (``images`` / ``image`` / ``video``
keys), except video-generation pairs, which use the ``messages`` + ``videos`` format because a LLaVA record carries
at most one video; plus auxiliary captioning records (plain chat, no judging template) and ``train_data.yaml``
mixing them with sampling strategies. Media paths are relative to the entry's ``image_folder``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unifiedreward.synth.examples import make_caption_example, make_example
from unifiedreward.synth.media import save_media
from unifiedreward.synth.tasks import AUX_COMBOS, COMBOS, SHORT, DifficultyMix, Example
from unifiedreward.synth.text import answer_text, reasoning_text, render_user_text
from unifiedreward.synth.world import World

__all__ = ["TrainingData", "default_strategies", "progress_bar", "training_record", "write_training_data"]


def training_record(example: Example, paths: Sequence[str], *, reasoning: bool = False) -> dict[str, Any]:
    """The released-format record of an example (LLaVA conversations; video pairs: messages + videos).

    Judging examples get the protocol's prompt and answer (with ``reasoning``: the element checklist of
    :func:`reasoning_text`, then the verdict or ``Final Score: N``); captioning examples their plain question and
    caption.
    """
    if example.task == "captioning":
        text, answer = example.fields["question"], example.fields["answer"]
    else:
        text = render_user_text(example.task, example.mode, example.fields)
        answer = answer_text(example.task, example.mode, verdict=example.verdict, score=example.score)
        if reasoning:
            answer = reasoning_text(example) + "\n" + answer
    if example.is_video and len(paths) > 1:
        return {
            "id": example.id,
            "messages": [
                {"role": "user", "content": "<video>" * len(paths) + text},
                {"role": "assistant", "content": answer},
            ],
            "videos": list(paths),
        }
    token = "<video>\n" if example.is_video else "<image>\n"
    record: dict[str, Any] = {"id": example.id}
    if example.is_video:
        record["video"] = paths[0]
    elif len(paths) == 1:
        record["image"] = paths[0]
    else:
        record["images"] = list(paths)
    record["conversations"] = [
        {"from": "human", "value": token * len(paths) + text},
        {"from": "gpt", "value": answer},
    ]
    return record


@dataclass
class TrainingData:
    """What :func:`write_training_data` wrote.

    Attributes:
        yaml_path: the mixture (``train_data.yaml``).
        files: ``(task, mode)`` -> the JSON file of that combination.
        counts: ``(task, mode)`` -> records written.
        media_folder: the folder media paths are relative to.
        captioning_yaml_path: a mixture of the captioning files only (``train_captioning.yaml``; for a first
            training stage that teaches a model trained from scratch to see), or ``None`` without captioning files.
    """

    yaml_path: Path
    files: dict[tuple[str, str], Path]
    counts: dict[tuple[str, str], int]
    media_folder: Path
    captioning_yaml_path: Path | None = None


def default_strategies(num: Mapping[tuple[str, str], int]) -> dict[tuple[str, str], str]:
    """``random:75%`` (a seeded subset) for point-score files, ``all`` for the others."""
    return {combo: "random:75%" if combo[1] == "point_score" else "all" for combo in num}


def write_training_data(
    out_dir: str | Path,
    world: World,
    num: Mapping[tuple[str, str], int] | int,
    *,
    mix: DifficultyMix | None = None,
    strategies: Mapping[tuple[str, str], str] | None = None,
    reasoning: bool = False,
    progress: bool = False,
) -> TrainingData:
    """Generate the training records of every task x mode (and captioning set) and a ``train_data.yaml``.

    Layout: ``out_dir/media/<ig-pair|...>/<id>_<a|b>.png|mp4``, ``out_dir/<task>_<mode>.json``,
    ``out_dir/train_data.yaml`` (absolute paths, so it can be used from any working directory).

    Args:
        out_dir: output folder.
        world: the world.
        num: records per task x mode and per ``("captioning", kind)`` of :data:`AUX_COMBOS` (missing keys: none);
            one int: that many for every task x mode and no captioning.
        mix: the difficulty mix.
        strategies: ``sampling_strategy`` per task x mode (default :func:`default_strategies`).
        reasoning: answers start with the element checklist (:func:`reasoning_text`) before the verdict / score.
        progress: show a progress bar.
    """
    out = Path(out_dir).resolve()
    media = out / "media"
    counts = dict.fromkeys(COMBOS, num) if isinstance(num, int) else dict(num)
    strategies = dict(strategies or default_strategies(counts))
    files: dict[tuple[str, str], Path] = {}
    bar = progress_bar(sum(counts.values()), "training data", progress)
    for task, mode in COMBOS + AUX_COMBOS:
        n = counts.get((task, mode), 0)
        if n <= 0:
            continue
        folder = media / f"{SHORT[task]}-{SHORT[mode]}"
        records = []
        for index in range(n):
            if task == "captioning":
                example = make_caption_example(world, mode, index, "train")
            else:
                example = make_example(world, task, mode, index, "train", mix)
            records.append(training_record(example, save_media(example, folder, media), reasoning=reasoning))
            bar.update(1)
        path = out / f"{task}_{mode}.json"
        path.write_text(json.dumps(records, indent=1) + "\n", encoding="utf-8")
        files[(task, mode)] = path
    bar.close()
    header = [
        "# Synthetic-world SFT mixture (unifiedreward.synth), read by unifiedreward.data.load_mixture.",
        "# Same format as dataset/train_data.yaml; paths are absolute. Records: the released LLaVA format",
        "# (video-generation pairs: messages + videos), prompts rendered by unifiedreward.protocol;",
        "# captioning_*.json: auxiliary plain captioning records (no judging template).",
    ]
    yaml_path = out / "train_data.yaml"
    _write_mixture(yaml_path, header, files, strategies, media)
    captioning = {combo: path for combo, path in files.items() if combo[0] == "captioning"}
    captioning_yaml = out / "train_captioning.yaml" if captioning else None
    if captioning_yaml is not None:
        _write_mixture(captioning_yaml, [*header[:2], "# The captioning files only (a first training stage)."],
                       captioning, strategies, media)  # fmt: skip
    return TrainingData(yaml_path, files, {c: counts[c] for c in files}, media, captioning_yaml)


def _write_mixture(path: Path, header: Sequence[str], files: Mapping[tuple[str, str], Path],
                   strategies: Mapping[tuple[str, str], str], media: Path) -> None:  # fmt: skip
    lines = [*header, "datasets:"]
    for combo, file in files.items():
        lines += [
            f"  - json_path: {file}",
            f"    sampling_strategy: {strategies.get(combo, 'all')}",
            f"    image_folder: {media}",
            "",
        ]
    path.write_text("\n".join(lines), encoding="utf-8")



def progress_bar(total: int, desc: str, enabled: bool) -> Any:
    """A ``tqdm`` bar over ``total`` items (disabled unless ``enabled``)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="item", disable=not enabled, dynamic_ncols=True)
