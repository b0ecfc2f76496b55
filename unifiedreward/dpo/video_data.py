"""Video DPO pairs: reading ``dpo_data.json``, decoding the clips, and the optional VAE-latent cache.

``dpo_data.json`` (written by ``VideoDPO/sift_dpo_data.py``, upstream's format, protocol reference §4.3): a JSON list
(or JSONL) of ``{"caption", "chosen", "rejected", ...}``; ``chosen`` / ``rejected`` are video files (or frame
folders) resolved against the file's folder (``--video_folder`` overrides); an optional numeric ``score`` is kept
but not used as upstream's ``dupfactor`` re-weighting (that scaled every pair by 0.72, §5.3).

Each clip is decoded with :func:`unifiedreward.media.load_video`, ``num_frames`` frames sampled uniformly over the
whole video with the **same** frame positions for winner and loser (upstream drew a random 2-frame window
independently for each, §5.3), resized to ``height × width`` and scaled to [-1, 1]: ``[3, F, H, W]`` float32.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from unifiedreward.errors import DataError
from unifiedreward.io import read_json, read_jsonl

logger = logging.getLogger(__name__)

__all__ = ["LatentCache", "VideoPairDataset", "collate_pairs", "read_pairs", "video_tensor"]


def read_pairs(path: str | Path) -> list[dict[str, Any]]:
    """The pairs of ``path`` (JSON list, or JSONL for ``.jsonl``), checked: each needs ``caption``/``prompt``,
    ``chosen`` and ``rejected`` (``prompt`` — the preference library's key — is accepted as ``caption``).

    Raises:
        DataError: naming the file and record.
    """
    path = Path(path)
    records = read_jsonl(path, require_id=False) if path.suffix == ".jsonl" else read_json(path, what="DPO data")
    if not isinstance(records, list):
        raise DataError("expected a JSON list of pairs", path=path)
    pairs = []
    for position, record in enumerate(records):
        caption = record.get("caption", record.get("prompt")) if isinstance(record, dict) else None
        if not isinstance(caption, str) or not record.get("chosen") or not record.get("rejected"):
            raise DataError(f"pair #{position} needs 'caption', 'chosen' and 'rejected'", path=path)
        pairs.append({**record, "caption": caption})
    return pairs


def video_tensor(reference: Any, *, root: str | Path | None, num_frames: int, height: int, width: int) -> torch.Tensor:
    """Decode ``reference`` (:func:`unifiedreward.media.resolve_media`) into ``[3, num_frames, height, width]``
    in [-1, 1]; a clip with fewer frames repeats its last one."""
    from unifiedreward.media import resolve_media

    video = resolve_media(reference, "video", root=root, num_frames=num_frames)
    frames = torch.from_numpy(video.frames).permute(0, 3, 1, 2).float() / 127.5 - 1.0  # [T, 3, h, w]
    if frames.shape[0] < num_frames:
        pad = frames[-1:].expand(num_frames - frames.shape[0], -1, -1, -1)
        frames = torch.cat([frames, pad])
    if frames.shape[-2:] != (height, width):
        frames = F.interpolate(frames, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    return frames.permute(1, 0, 2, 3).contiguous()


class VideoPairDataset(torch.utils.data.Dataset):
    """``{"index", "caption", "chosen_ref", "rejected_ref", "chosen", "rejected"}`` per pair: the references as
    written in the data and the decoded clips ``[3, F, H, W]`` (module docstring). With a ``latent_cache`` holding
    both clips' latents, the clips are not decoded (``None``)."""

    def __init__(self, pairs: Sequence[dict[str, Any]], *, root: str | Path | None, num_frames: int, height: int,
                 width: int, latent_cache: LatentCache | None = None) -> None:  # fmt: skip
        self.pairs, self.root = list(pairs), root
        self.num_frames, self.height, self.width = num_frames, height, width
        self.latent_cache = latent_cache

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        pair = self.pairs[index]
        size = dict(root=self.root, num_frames=self.num_frames, height=self.height, width=self.width)
        item: dict[str, Any] = {"index": index, "caption": pair["caption"], "chosen_ref": str(pair["chosen"]),
                                "rejected_ref": str(pair["rejected"]), "chosen": None, "rejected": None}  # fmt: skip
        cache = self.latent_cache
        if cache is None or not all(cache.path(item[f"{k}_ref"]).exists() for k in ("chosen", "rejected")):
            item["chosen"] = video_tensor(pair["chosen"], **size)
            item["rejected"] = video_tensor(pair["rejected"], **size)
        return item


def collate_pairs(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A batch: lists of captions / references / (possibly ``None``) clips, and ``index`` as a tensor."""
    batch = {key: [item[key] for item in items] for key in items[0]}
    batch["index"] = torch.tensor(batch["index"])
    return batch


class LatentCache:
    """VAE latents of decoded clips on disk (``<dir>/<sha1(model|video|frames|size)>.pt``), so each clip is
    decoded and encoded once over all epochs. ``encode`` is the family's :meth:`VideoFamily.encode_video`."""

    def __init__(self, cache_dir: str | Path, tag: str) -> None:
        self.cache_dir, self.tag = Path(cache_dir), tag
        self.hits = 0
        self.misses = 0

    def path(self, reference: Any) -> Path:
        """The file of one clip's latents."""
        return self.cache_dir / (hashlib.sha1(f"{self.tag}|{reference}".encode()).hexdigest() + ".pt")

    def get(self, references: Sequence[Any], videos: Sequence[torch.Tensor | None], encode: Any) -> torch.Tensor:
        """Latents ``[B, ...]`` of ``references``; ``videos[i]`` (decoded clips) are encoded for the missing ones."""
        out: list[torch.Tensor | None] = []
        missing = []
        for i, reference in enumerate(references):
            path = self.path(reference)
            if path.exists():
                out.append(torch.load(path, map_location="cpu", weights_only=True))
                self.hits += 1
            else:
                out.append(None)
                missing.append(i)
        if missing:
            if any(videos[i] is None for i in missing):
                raise ValueError("latents missing from the cache and their clips not decoded")
            latents = encode(torch.stack([videos[i] for i in missing])).float().cpu()
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            for i, latent in zip(missing, latents, strict=True):
                tmp = self.path(references[i]).with_suffix(".tmp")
                torch.save(latent.clone(), tmp)
                tmp.replace(self.path(references[i]))
                out[i] = latent
            self.misses += len(missing)
        return torch.stack(out)  # type: ignore[arg-type]
