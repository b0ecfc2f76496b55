"""Per-call vision feature reuse for Qwen-VL models (:func:`vision_feature_cache`, :class:`VisionFeatureCache`,
:func:`encode_vision`).

Part of :mod:`unifiedreward.judge.vision` (see its limits). This module holds the store and the deduplication
(:class:`VisionFeatureCache`, :func:`dedup_encode`); :mod:`unifiedreward.judge.vision_hooks` installs the
replacement on the model *instance* (and removes it on exit).

A pair tournament over ``M`` images shows each image in many prompts, and a debiased pair shows both images
twice (both orders). The processor turns every occurrence into its own patch rows, so the stock forward encodes
each occurrence again. Design: rather than passing ``inputs_embeds`` (which would lose ``input_ids``, needed by
``get_rope_index`` for the 3-D rotary positions, and Qwen3-VL's deepstack features), the context manager
replaces the base model's ``get_image_features`` / ``get_video_features`` *on the instance*. Both the model's
``forward`` and ``generate`` (which encodes media before prefill through ``base_model.get_*_features``) call
them, so everything else -- placeholder scatter, mrope positions, deepstack injection -- stays stock. The
replacement:

* splits ``pixel_values`` into items (one image, or one whole video, per ``grid_thw`` row: ``t*h*w`` patch rows);
* fingerprints every item on its device (two random projections of its patch rows summed per item: one small
  matmul and one host sync for the batch) and confirms candidate duplicates with an exact ``torch.equal`` on
  the pixels, so a match is bit-exact, never a hash guess;
* looks each distinct item up in the :class:`VisionFeatureCache` (earlier forwards of the same judging call);
* runs the stock ``get_*_features`` once on the patch rows of the items that are new, and scatters the per-item
  outputs back into the caller's order (``pooler_output`` tuple, Qwen3-VL ``deepstack_features``, and
  ``last_hidden_state``, whose rows are contiguous per item for all Qwen towers, window order included).

Running the tower on a subset of the batch gives the same per-item features because every op of the Qwen
towers is per token or per item (attention never crosses ``cu_seqlens`` boundaries); only float rounding of
differently sized matmuls can differ (~1e-7 relative in fp32).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

logger = logging.getLogger(__name__)

__all__ = ["CacheStats", "VisionFeatureCache", "dedup_encode"]


@dataclass
class CacheStats:
    """Counters of a :class:`VisionFeatureCache` (cumulative over its calls).

    Attributes:
        calls: ``get_*_features`` calls seen (including bypassed ones).
        bypassed: calls passed to the stock method untouched (see the module limits).
        items: images / videos requested.
        encoded: items actually run through the tower.
        duplicates: items reused from an identical item of the same call.
        hits: items reused from an earlier call.
        patches: patch rows requested.
        patches_encoded: patch rows run through the tower.
    """

    calls: int = 0
    bypassed: int = 0
    items: int = 0
    encoded: int = 0
    duplicates: int = 0
    hits: int = 0
    patches: int = 0
    patches_encoded: int = 0


@dataclass
class _Entry:
    key: tuple
    fingerprint: tuple[float, ...]
    pixels: torch.Tensor
    output_cls: type
    pooler: torch.Tensor
    deepstack: tuple[torch.Tensor, ...] | None
    last_hidden: torch.Tensor | None


@dataclass
class VisionFeatureCache:
    """Content-addressed store of per-item vision features for one model, meant to live for one judging call.

    Args:
        max_items: most items kept (least recently used evicted first); ``None`` for no bound.
        keep_last_hidden_state: also keep each item's pre-merger hidden states, so outputs served from the cache
            carry ``last_hidden_state`` (the model forward does not read it; without it such outputs have
            ``last_hidden_state=None``).
    """

    max_items: int | None = 1024
    keep_last_hidden_state: bool = False
    stats: CacheStats = field(default_factory=CacheStats)
    _entries: OrderedDict = field(default_factory=OrderedDict, repr=False)  # id -> _Entry, least recent first
    _buckets: dict = field(default_factory=dict, repr=False)  # (modality, dtype, row shape, device, grid) -> [_Entry]
    _owner: Any = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Drop every entry (stats are kept) and unbind the model."""
        self._entries.clear()
        self._buckets.clear()
        self._owner = None

    def bind(self, owner: torch.nn.Module) -> None:
        """Tie the cache to ``owner`` (its features are only valid for that model)."""
        if self._owner is not None and self._owner() is not owner:
            raise ValueError("this VisionFeatureCache holds features of another model; use a new cache or clear()")
        if self._owner is None:
            import weakref

            self._owner = weakref.ref(owner)

    def _lookup(self, key: tuple, fingerprint: tuple[float, ...], pixels: torch.Tensor) -> _Entry | None:
        for entry in self._buckets.get(key, ()):
            if _close(entry.fingerprint, fingerprint) and torch.equal(entry.pixels, pixels):
                self._entries.move_to_end(id(entry))
                return entry
        return None

    def _insert(self, entry: _Entry) -> None:
        self._entries[id(entry)] = entry
        self._buckets.setdefault(entry.key, []).append(entry)
        if self.max_items is not None:
            while len(self._entries) > self.max_items:
                _, old = self._entries.popitem(last=False)
                bucket = self._buckets[old.key]
                bucket.remove(old)
                if not bucket:
                    del self._buckets[old.key]


_FINGERPRINT_WEIGHTS: dict[tuple, torch.Tensor] = {}


def _close(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether two fingerprints ``(sum_1, sum_2, scale)`` may come from identical pixels.

    Identical pixels give sums equal up to float reassociation (and TF32 on GPUs), i.e. far below ``1e-4`` of the
    sum of absolute terms; anything that close is then compared exactly, so a loose test only costs a comparison.
    """
    tolerance = 1e-4 * max(a[-1], b[-1]) + 1e-12
    return all(abs(x - y) <= tolerance for x, y in zip(a[:-1], b[:-1], strict=True))


def _fingerprints(pixel_values: torch.Tensor, rows: list[int]) -> list[tuple[float, ...]]:
    """Per item: two random projections of its patch rows, summed (the second position-weighted), and the sum of
    the absolute projections (the scale :func:`_close` compares at). One host sync for the batch.

    Args:
        pixel_values: ``(N, C)`` patch rows of all items.
        rows: patch rows per item (sums to ``N``).

    Returns:
        ``n_items`` tuples ``(sum_1, sum_2, scale)``.
    """
    x = pixel_values.detach().reshape(pixel_values.shape[0], -1)
    key = (x.device, x.shape[1])
    weights = _FINGERPRINT_WEIGHTS.get(key)
    if weights is None:
        generator = torch.Generator().manual_seed(0x5EED)
        weights = (torch.rand(x.shape[1], 2, generator=generator) + 0.5).to(x.device)
        _FINGERPRINT_WEIGHTS[key] = weights
    sum_dtype = torch.float32 if x.device.type == "mps" else torch.float64
    proj = (x.float() @ weights).to(sum_dtype)  # (N, 2); no float64 copy of the pixels
    counts = torch.tensor(rows, device=x.device)
    item = torch.repeat_interleave(torch.arange(len(rows), device=x.device), counts)
    starts = torch.cumsum(counts, 0) - counts
    local = torch.arange(x.shape[0], device=x.device) - starts[item]
    position_weight = 1.0 + torch.remainder(local * 7919, 997).to(sum_dtype) / 997.0
    terms = torch.stack([proj[:, 0], proj[:, 1] * position_weight, proj.abs().sum(-1)], dim=-1)
    sums = torch.zeros(len(rows), 3, dtype=sum_dtype, device=x.device).index_add_(0, item, terms)
    return [tuple(row) for row in sums.cpu().tolist()]


def _item_outputs(output: Any, rows: list[int]) -> tuple[list[torch.Tensor], list[tuple] | None, list | None]:
    """Per-item views of a ``get_*_features`` output: pooler, deepstack (per item, per layer), last hidden."""
    pooler = list(output.pooler_output)
    deepstack_layers = getattr(output, "deepstack_features", None)
    deepstack = None
    if deepstack_layers is not None:
        deepstack = [tuple(layer[i] for layer in deepstack_layers) for i in range(len(pooler))]
    last_hidden = None
    if getattr(output, "last_hidden_state", None) is not None and output.last_hidden_state.shape[0] == sum(rows):
        last_hidden = list(torch.split(output.last_hidden_state, rows))
    return pooler, deepstack, last_hidden


def _should_bypass(kwargs: dict[str, Any]) -> bool:
    if kwargs.get("output_attentions") or kwargs.get("output_hidden_states"):
        return True
    return any(isinstance(value, torch.Tensor) for value in kwargs.values())


def dedup_encode(
    encode: Callable[..., Any],
    pixel_values: torch.Tensor,
    grid_thw: torch.Tensor,
    *,
    modality: str = "image",
    cache: VisionFeatureCache | None = None,
    **kwargs: Any,
) -> Any:
    """Run ``encode`` once per distinct item and assemble the output the caller would have got.

    Args:
        encode: a stock ``get_image_features`` / ``get_video_features``-like callable,
            ``encode(pixel_values, grid_thw, return_dict=True, **kwargs)`` -> output with ``pooler_output`` a tuple
            of ``(tokens_i, out_dim)`` tensors (and optionally ``deepstack_features``: list of such tuples, and
            ``last_hidden_state`` ``(N, hidden)``).
        pixel_values: ``(N, C)`` patch rows, ``t*h*w`` rows per item, items in ``grid_thw`` order.
        grid_thw: ``(n_items, 3)``.
        modality: part of the cache key (``"image"`` / ``"video"``).
        cache: cross-call store; ``None`` dedupes within this call only. Ignored (neither read nor written) while
            autograd is enabled.
        **kwargs: forwarded to ``encode``.

    Returns:
        An output of ``encode``'s class with per-item fields in the caller's order.
    """
    stats = cache.stats if cache is not None else CacheStats()
    stats.calls += 1
    grids = [tuple(int(v) for v in row) for row in grid_thw.tolist()]
    rows = [t * h * w for t, h, w in grids]
    if sum(rows) != pixel_values.shape[0] or _should_bypass(kwargs):
        stats.bypassed += 1
        return encode(pixel_values, grid_thw, return_dict=True, **kwargs)
    use_cache = cache is not None and not torch.is_grad_enabled()
    fingerprints = _fingerprints(pixel_values, rows)
    slices = list(torch.split(pixel_values, rows))
    base_key = (modality, pixel_values.dtype, tuple(pixel_values.shape[1:]), pixel_values.device)

    # source[i]: ("new", j) -> j-th distinct new item; ("hit", entry) -> cached item.
    source: list[tuple[str, Any]] = []
    new_items: list[int] = []
    for i, (grid, fingerprint) in enumerate(zip(grids, fingerprints, strict=True)):
        key = (*base_key, grid)
        match = None
        for j, first in enumerate(new_items):
            if (
                grids[first] == grid
                and _close(fingerprints[first], fingerprint)
                and torch.equal(slices[first], slices[i])
            ):
                match = ("new", j)
                stats.duplicates += 1
                break
        if match is None and use_cache:
            entry = cache._lookup(key, fingerprint, slices[i])
            if entry is not None:
                match = ("hit", entry)
                stats.hits += 1
        if match is None:
            match = ("new", len(new_items))
            new_items.append(i)
        source.append(match)
    stats.items += len(grids)
    stats.patches += sum(rows)
    stats.encoded += len(new_items)
    stats.patches_encoded += sum(rows[i] for i in new_items)

    if len(new_items) == len(grids):  # nothing to reuse: the stock call itself
        output = encode(pixel_values, grid_thw, return_dict=True, **kwargs)
        if use_cache:
            _store(cache, output, new_items, grids, rows, fingerprints, slices, base_key)
        return output

    output_cls: type | None = None
    new_pooler: list[torch.Tensor] = []
    new_deepstack: list[tuple] | None = None
    new_last: list | None = None
    if new_items:
        subset_pixels = torch.cat([slices[i] for i in new_items]) if len(new_items) > 1 else slices[new_items[0]]
        subset_grid = grid_thw[torch.tensor(new_items, device=grid_thw.device)]
        output = encode(subset_pixels, subset_grid, return_dict=True, **kwargs)
        output_cls = type(output)
        new_pooler, new_deepstack, new_last = _item_outputs(output, [rows[i] for i in new_items])
        if use_cache:
            _store(cache, output, new_items, grids, rows, fingerprints, slices, base_key)

    pooler, deepstack, last = [], [], []
    for kind, ref in source:
        if kind == "new":
            pooler.append(new_pooler[ref])
            deepstack.append(new_deepstack[ref] if new_deepstack is not None else None)
            last.append(new_last[ref] if new_last is not None else None)
        else:
            output_cls = output_cls or ref.output_cls
            pooler.append(ref.pooler)
            deepstack.append(ref.deepstack)
            last.append(ref.last_hidden)
    fields: dict[str, Any] = {"pooler_output": tuple(pooler)}
    if all(t is not None for t in last):
        fields["last_hidden_state"] = torch.cat(last)
    if any(d is not None for d in deepstack):
        if not all(d is not None for d in deepstack):  # pragma: no cover - one model gives one output kind
            raise RuntimeError("inconsistent deepstack features between cached and new items")
        fields["deepstack_features"] = [tuple(d[layer] for d in deepstack) for layer in range(len(deepstack[0]))]
    return output_cls(**fields)


def _store(
    cache: VisionFeatureCache,
    output: Any,
    items: list[int],
    grids: list[tuple[int, int, int]],
    rows: list[int],
    fingerprints: list[tuple[float, ...]],
    slices: list[torch.Tensor],
    base_key: tuple,
) -> None:
    pooler, deepstack, last = _item_outputs(output, [rows[i] for i in items])
    for j, i in enumerate(items):
        cache._insert(
            _Entry(
                key=(*base_key, grids[i]),
                fingerprint=fingerprints[i],
                pixels=slices[i].detach().clone(),
                output_cls=type(output),
                pooler=pooler[j].detach(),
                deepstack=tuple(t.detach() for t in deepstack[j]) if deepstack is not None else None,
                last_hidden=last[j].detach().clone() if (cache.keep_last_hidden_state and last is not None) else None,
            )
        )
