"""Image-preference pairs for Diffusion-DPO: ``<dataset>/dpo_data.json`` + ``<dataset>/images_dpo/``.

Record format (what :mod:`unifiedreward.dpo.diffusion_sift` writes; upstream's format, protocol reference §4.2/§5.2)::

    {"id": "17", "caption": "...", "jpg_0": "image_17_chosen.png", "jpg_1": "image_17_rejected.png", "label_0": 1,
     "chosen_score": 8.0, "rejected_score": 3.0, "evidence": "<JSON text>", ...}

``label_0 = 1`` means ``jpg_0`` is preferred (0: ``jpg_1``; Pick-a-Pic style data with both labels works too). Any
other columns are ignored (upstream declared fixed ``Features`` and failed on its own leftover ``prompt`` column).

Preprocessing per image (upstream §5.2): resize the shorter side to ``resolution`` (bilinear), centre crop (or random
crop), optional horizontal flip, scale to [-1, 1]. One flip and one crop offset are drawn per *pair* so winner and
loser stay comparable (upstream drew them independently per image). Each item is ``{"pixels": [2, 3, R, R]`` (winner
first), ``"caption"``, ``"original_size"`` and ``"crop_top_left"``} (SDXL micro-conditioning).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from unifiedreward.errors import DataError

logger = logging.getLogger(__name__)

__all__ = ["DPO_DATA_FILE", "DPO_IMAGE_DIR", "EpochSampler", "PairDataset", "collate_pairs", "load_pairs",
           "preprocess_image"]

DPO_DATA_FILE = "dpo_data.json"
DPO_IMAGE_DIR = "images_dpo"
REQUIRED = ("caption", "jpg_0", "jpg_1", "label_0")


def load_pairs(dataset_dir: str | Path, *, data_file: str = DPO_DATA_FILE) -> Any:
    """``<dataset_dir>/<data_file>`` as a ``datasets.Dataset`` of the required columns (``caption``, ``jpg_0``,
    ``jpg_1``, ``label_0``; others dropped).

    Raises:
        DataError: the file is missing, or lacks a required column.
    """
    import datasets

    path = Path(dataset_dir) / data_file
    if not path.is_file():
        raise DataError(f"no {data_file} in {dataset_dir} (run sift_dpo_data.py first)", path=path)
    data = datasets.load_dataset("json", data_files=str(path), split="train")
    missing = [c for c in REQUIRED if c not in data.column_names]
    if missing:
        raise DataError(f"missing column(s) {missing}", path=path)
    return data.select_columns(list(REQUIRED))


def preprocess_image(
    image: Image.Image, resolution: int, *, flip: bool, crop_fraction: tuple[float, float] | None
) -> tuple[torch.Tensor, tuple[int, int], tuple[int, int]]:
    """Resize (shorter side), crop to ``resolution`` (centre, or at ``crop_fraction`` of the free room), flip.

    Returns:
        ``(pixels [3, R, R] in [-1, 1], original (h, w), crop top-left (top, left))``.
    """
    image = image.convert("RGB")
    original = (image.height, image.width)
    scale = resolution / min(image.size)
    size = (max(resolution, round(image.width * scale)), max(resolution, round(image.height * scale)))
    image = image.resize(size, Image.BILINEAR)
    room_w, room_h = size[0] - resolution, size[1] - resolution
    fy, fx = crop_fraction if crop_fraction is not None else (0.5, 0.5)
    top, left = round(room_h * fy), round(room_w * fx)
    image = image.crop((left, top, left + resolution, top + resolution))
    if flip:
        image = image.transpose(Image.FLIP_LEFT_RIGHT)
    pixels = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).reshape(resolution, resolution, 3)
    pixels = pixels.permute(2, 0, 1).float().div(127.5).sub(1.0)
    return pixels, original, (top, left)


class PairDataset(torch.utils.data.Dataset):
    """Preference pairs as tensors (module docstring).

    Args:
        records: rows with ``caption``, ``jpg_0``, ``jpg_1``, ``label_0`` (a ``datasets.Dataset`` or dicts).
        image_dir: folder of the image files (``<dataset>/images_dpo``).
        resolution: training size R.
        random_crop: random instead of centre crop.
        hflip: random horizontal flip (p = 0.5, one draw per pair).
        seed: seed of the crop / flip draws (per item: ``seed + index``; reproducible across workers and resumes).
    """

    def __init__(self, records: Sequence[dict[str, Any]], image_dir: str | Path, resolution: int, *,
                 random_crop: bool = False, hflip: bool = True, seed: int = 0):  # fmt: skip
        self.records = records
        self.image_dir = Path(image_dir)
        self.resolution = resolution
        self.random_crop = random_crop
        self.hflip = hflip
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.records)

    def _open(self, name: str) -> Image.Image:
        from unifiedreward.media import resolve_media

        return resolve_media(name, "image", root=self.image_dir)

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = self.records[index]
        rng = random.Random(self.seed * 1_000_003 + self.epoch * 7919 + index)
        flip = self.hflip and rng.random() < 0.5
        crop = (rng.random(), rng.random()) if self.random_crop else None
        first, second = (row["jpg_0"], row["jpg_1"]) if int(row["label_0"]) == 1 else (row["jpg_1"], row["jpg_0"])
        w_pix, original, crop_tl = preprocess_image(self._open(first), self.resolution, flip=flip, crop_fraction=crop)
        l_pix, _, _ = preprocess_image(self._open(second), self.resolution, flip=flip, crop_fraction=crop)
        return {"pixels": torch.stack([w_pix, l_pix]), "caption": row["caption"], "original_size": original,
                "crop_top_left": crop_tl}  # fmt: skip


class EpochSampler(torch.utils.data.Sampler):
    """A shuffle that depends only on ``(seed, epoch)``: ``randperm(n)`` from a generator seeded ``seed + epoch``.

    Unlike a ``RandomSampler`` it draws nothing from the global RNG, so a resumed run sees the same order (and the
    same noise draws) as an uninterrupted one. Set :attr:`epoch` before each epoch.
    """

    def __init__(self, size: int, seed: int = 0):
        self.size = size
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return self.size

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's order (also called by accelerate's prepared loaders)."""
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())


def collate_pairs(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch items: ``pixels [B, 2, 3, R, R]``, ``captions`` (list), ``original_size`` / ``crop_top_left`` [B, 2]."""
    return {
        "pixels": torch.stack([item["pixels"] for item in items]),
        "captions": [item["caption"] for item in items],
        "original_size": torch.tensor([item["original_size"] for item in items]),
        "crop_top_left": torch.tensor([item["crop_top_left"] for item in items]),
    }
