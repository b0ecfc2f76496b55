"""The SFT batch collator: right-padding of token tensors, concatenation of media tensors.

:class:`SFTCollator` right-pads token-level tensors (``input_ids`` with the pad id, ``labels`` with ``-100``,
``attention_mask`` and ``mm_token_type_ids`` with 0) and concatenates the media tensors of the batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from unifiedreward.data.labels import IGNORE_INDEX

__all__ = ["TOKEN_KEYS", "SFTCollator"]

#: Keys of the processor output that are per token (padded by the collator), with their padding value (None: the
#: tokenizer's pad id).
TOKEN_KEYS: dict[str, int | None] = {
    "input_ids": None,
    "labels": IGNORE_INDEX,
    "attention_mask": 0,
    "mm_token_type_ids": 0,
    "token_type_ids": 0,
}


class SFTCollator:
    """Batch samples of :class:`SupervisedDataset`.

    Token-level tensors are right-padded to the longest sample (``input_ids`` with ``pad_token_id``, ``labels`` with
    ``-100``, ``attention_mask`` / ``mm_token_type_ids`` with 0), optionally to a multiple of
    ``pad_to_multiple_of``. Media tensors are concatenated along their first dimension (they carry their own
    per-item structure: grids, image sizes, counts). LLaVA-OneVision ``pixel_values`` of images with different
    numbers of anyres tiles are zero-padded on the tile dimension (the model reads only the valid tiles).

    Args:
        pad_token_id: the tokenizer's pad id.
        pad_to_multiple_of: pad the sequence length up to a multiple of this (e.g. 8 for tensor cores).

    Returns (``__call__``):
        ``input_ids``, ``labels``, ``attention_mask`` ``(B, L)``, ``mm_token_type_ids`` ``(B, L)`` when present, and
        the media tensors.
    """

    def __init__(self, pad_token_id: int, *, pad_to_multiple_of: int | None = None):
        self.pad_token_id = int(pad_token_id)
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, features: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        if not features:
            raise ValueError("cannot collate an empty batch")
        length = max(int(feature["input_ids"].shape[0]) for feature in features)
        if self.pad_to_multiple_of:
            length = math.ceil(length / self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch: dict[str, torch.Tensor] = {}
        keys = list(dict.fromkeys(key for feature in features for key in feature))
        for key in keys:
            if key in TOKEN_KEYS:
                value = self.pad_token_id if TOKEN_KEYS[key] is None else TOKEN_KEYS[key]
                out = torch.full((len(features), length), value, dtype=features[0][key].dtype)
                for row, feature in enumerate(features):
                    tensor = feature[key]
                    out[row, : tensor.shape[0]] = tensor
                batch[key] = out
            else:
                batch[key] = _concat(key, [feature[key] for feature in features if key in feature])
        return batch


def _concat(key: str, tensors: list[torch.Tensor]) -> torch.Tensor:
    """Concatenate along dim 0; zero-pad the tile dimension of 5-D image tensors (anyres) when it differs."""
    if len(tensors) == 1:
        return tensors[0]
    shapes = {tuple(t.shape[1:]) for t in tensors}
    if len(shapes) > 1:
        if key == "pixel_values" and all(t.dim() == 5 for t in tensors) and len({t.shape[2:] for t in tensors}) == 1:
            tiles = max(int(t.shape[1]) for t in tensors)
            tensors = [torch.nn.functional.pad(t, (0, 0, 0, 0, 0, 0, 0, tiles - t.shape[1])) for t in tensors]
        else:
            raise ValueError(
                f"cannot batch {key!r} tensors of shapes {[tuple(t.shape) for t in tensors]}; e.g. LLaVA-OneVision "
                "videos with different frame counts: use per_device_train_batch_size 1 or a fixed frames_upbound"
            )
    return torch.cat(tensors, dim=0)
