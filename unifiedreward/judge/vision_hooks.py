"""Vision feature reuse wired into a Qwen-VL model: :func:`vision_feature_cache` (a context manager replacing the
base model's ``get_image_features`` / ``get_video_features`` on the instance) and :func:`encode_vision`.

The deduplication itself (fingerprints, exact matching, the
:class:`~unifiedreward.judge.vision_cache.VisionFeatureCache` store) is in :mod:`unifiedreward.judge.vision_cache`;
see :mod:`unifiedreward.judge.vision` for the design and limits.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading
from collections.abc import Callable, Iterator
from typing import Any

import torch

from unifiedreward.judge.vision_cache import VisionFeatureCache, dedup_encode

__all__ = ["encode_vision", "supports_vision_feature_cache", "vision_feature_cache"]

# Depth of nested get_*_features calls inside a wrapped call (per thread): nested calls run unwrapped.
_guard = threading.local()


def _vision_base(model: torch.nn.Module) -> torch.nn.Module:
    """The module that owns ``visual`` and ``get_image_features``
    (``model.model`` for ``...ForConditionalGeneration``)."""
    for candidate in (model, getattr(model, "model", None)):
        if (
            candidate is not None
            and isinstance(getattr(candidate, "visual", None), torch.nn.Module)
            and hasattr(candidate.visual, "spatial_merge_size")
            and callable(getattr(candidate, "get_image_features", None))
        ):
            return candidate
    raise TypeError(
        f"{type(model).__name__} is not a Qwen-style VLM (no `.visual` tower with get_image_features); "
        "vision feature reuse supports Qwen2-VL, Qwen2.5-VL and Qwen3-VL"
    )


def supports_vision_feature_cache(model: torch.nn.Module) -> bool:
    """Whether :func:`vision_feature_cache` / :func:`encode_vision` accept ``model`` (Qwen-style ``.visual`` tower)."""
    try:
        _vision_base(model)
    except TypeError:
        return False
    return True


def _call_unwrapped(original: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``original`` with feature reuse switched off for nested calls (Qwen3-VL's ``get_video_features`` calls
    ``self.get_image_features``, and an enclosing :func:`vision_feature_cache` must not dedupe twice)."""
    _guard.depth = getattr(_guard, "depth", 0) + 1
    try:
        return original(*args, **kwargs)
    finally:
        _guard.depth -= 1


def _make_wrapper(base: torch.nn.Module, original: Callable[..., Any], modality: str, cache: VisionFeatureCache):
    names = [
        name
        for name, p in inspect.signature(original).parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.POSITIONAL_ONLY)
    ]
    pixel_name, grid_name = names[0], names[1]

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if getattr(_guard, "depth", 0) or len(args) > 2:
            return original(*args, **kwargs)
        if args:
            kwargs[pixel_name] = args[0]
        if len(args) > 1:
            kwargs[grid_name] = args[1]
        pixel_values = kwargs.pop(pixel_name, None)
        grid_thw = kwargs.pop(grid_name, None)
        if pixel_values is None or grid_thw is None:
            return original(pixel_values, grid_thw, **kwargs)
        return_dict = kwargs.pop("return_dict", None)
        if return_dict is None:
            return_dict = getattr(base.config, "return_dict", True)

        output = dedup_encode(
            functools.partial(_call_unwrapped, original),
            pixel_values,
            grid_thw,
            modality=modality,
            cache=cache,
            **kwargs,
        )
        if not return_dict and not isinstance(output, tuple):
            output = output.to_tuple()
        return output

    return wrapper


@contextlib.contextmanager
def vision_feature_cache(
    model: torch.nn.Module, cache: VisionFeatureCache | None = None
) -> Iterator[VisionFeatureCache]:
    """Within the block, every image / video is encoded once, however often it occurs in the forwards and
    ``generate`` calls on ``model``.

    Replaces ``get_image_features`` / ``get_video_features`` of the base model (``model.model``) on the instance and
    restores them on exit, also on error.

    Args:
        model: a Qwen2-VL / Qwen2.5-VL / Qwen3-VL ``...ForConditionalGeneration`` or base model.
        cache: reuse an existing cache (e.g. across the batches of one judging call); a new one by default.

    Yields:
        The :class:`VisionFeatureCache` (see its ``stats``).

    Raises:
        TypeError: ``model`` is not a Qwen-style VLM.
        ValueError: ``cache`` belongs to another model.
    """
    base = _vision_base(model)
    cache = cache if cache is not None else VisionFeatureCache()
    cache.bind(base)
    saved: list[tuple[str, Any]] = []
    try:
        for modality in ("image", "video"):
            name = f"get_{modality}_features"
            original = getattr(base, name, None)
            if not callable(original):
                continue
            saved.append((name, base.__dict__.get(name)))
            base.__dict__[name] = _make_wrapper(base, original, modality, cache)
        yield cache
    finally:
        for name, previous in reversed(saved):
            if previous is None:
                base.__dict__.pop(name, None)
            else:
                base.__dict__[name] = previous


def encode_vision(
    model: torch.nn.Module,
    pixel_values: torch.Tensor,
    grid_thw: torch.Tensor,
    *,
    modality: str = "image",
    cache: VisionFeatureCache | None = None,
) -> Any:
    """Deduplicated ``get_{modality}_features``: usable as ``mm_encoder_outputs={modality: ...}`` of a forward.

    Args:
        model: a Qwen-style VLM (see :func:`vision_feature_cache`).
        pixel_values: ``(N, C)`` patch rows (``pixel_values`` or ``pixel_values_videos`` of the processor).
        grid_thw: ``(n_items, 3)`` (``image_grid_thw`` / ``video_grid_thw``).
        modality: ``"image"`` or ``"video"``.
        cache: optional cross-call cache (bound to ``model``).

    Returns:
        The model's features output (``pooler_output``: tuple of ``(tokens_i, out_dim)``, per item in order).
    """
    if modality not in ("image", "video"):
        raise ValueError(f"modality must be 'image' or 'video', got {modality!r}")
    base = _vision_base(model)
    if cache is not None:
        cache.bind(base)
    original = getattr(base, f"get_{modality}_features")
    return dedup_encode(
        functools.partial(_call_unwrapped, original), pixel_values, grid_thw, modality=modality, cache=cache
    )
