"""Cheap vision encoding for Qwen-VL reward models: batched windowed attention and per-call feature reuse.

The vision tower dominates a judging forward (about 70% of a batched Qwen2.5-VL-7B forward with two 448x448 images
per prompt). Two independent tools cut that cost; both are exact (same features, same logits, same greedy text up
to float reassociation, see the tests) and both patch *instances*, never classes, so two models in one process are
independent.

1. Batched vision attention (:func:`patch_vision_attention`, alias :func:`patch_qwen25_vision_attention`).

   What stock transformers 5.23 does: every vision block calls ``VisionAttention.forward(hidden_states,
   cu_seqlens, ...)`` on the packed ``(S, D)`` sequence of all images of the batch. With ``flash_attention_*`` the
   ``cu_seqlens`` go to one varlen kernel. With ``sdpa`` (the default) and ``eager`` it runs
   ``torch.split(q/k/v, (cu_seqlens[1:] - cu_seqlens[:-1]).tolist(), dim=2)`` -- a device->host sync in *every*
   layer -- and then **one attention call per chunk** in a Python loop, followed by a ``torch.cat``. For
   Qwen2.5-VL the windowed blocks (all but ``fullatt_block_indexes``) use ``cu_window_seqlens``: with the 7B config
   (patch 14, merge 2, ``window_size=112``) a window is 4x4 merged units = 8x8 = 64 patches, so a 448x448 image
   (32x32 patches) is 16 windows of 64 tokens, and 32 such images give 512 tiny ``(1, 16, 64, 80)`` SDPA calls per
   layer, 28 windowed layers per forward: the GPU is launch-bound. The full-attention blocks (and every block of
   Qwen2-VL / Qwen3-VL, whose chunks are whole frames) loop once per image / frame.

   The patched forward computes the same q/k/v (same ``qkv`` projection and the model module's own
   ``apply_rotary_pos_emb_vision``), then groups the chunks by length: all chunks of length ``L`` (across all images
   and videos of the batch) go through ONE call of the model's attention interface (``sdpa`` or ``eager``) as a
   ``(n_chunks, heads, L, head_dim)`` batch. Edge windows (images whose merged grid is not a multiple of the window)
   form a few extra groups, one per distinct length. When the chunks of each length are not contiguous, one
   ``index_select`` gathers q/k/v into group order and one gathers the output back. The grouping plan is computed
   once per distinct ``cu_seqlens`` tensor (i.e. once per tower forward for the windowed blocks and once for the
   full blocks) instead of a ``.tolist()`` per layer.

   Covered: every transformers vision-attention class whose ``forward`` source is identical to
   ``Qwen2_5_VLVisionAttention.forward`` (checked at patch time): Qwen2-VL, Qwen2.5-VL, Qwen3-VL(-MoE), Qwen3.5,
   GLM-4V and a few more. ``flash_attention_*`` (already one varlen call) and any other attention implementation
   fall through to the stock forward, as do calls that ask for attention weights.

2. Per-call vision feature reuse (:func:`vision_feature_cache`, :class:`VisionFeatureCache`, :func:`encode_vision`).

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

Limits:
    * Qwen-style towers only (a base model with ``.visual``): LLaVA-OneVision's SigLIP + anyres path is not covered
      (:func:`vision_feature_cache` raises ``TypeError``).
    * The feature cache bypasses itself (stock call) when ``output_attentions`` / ``output_hidden_states`` are
      requested or when precomputed tensors (``image_cu_seqlens`` ...) are passed. With autograd enabled it only
      dedupes within a call (gradients flow through the reuse) and never stores or reads the cross-call cache.
    * A cache belongs to one model (weights are not hashed); binding it to another model raises. Keep one cache per
      judging call: it holds a clone of each distinct item's pixels plus its features on the model's device
      (about 9 MB per 448x448 image for the 7B model with ``keep_last_hidden_state=True``, 6 MB without), bounded
      by ``max_items`` (LRU).
    * Items are whole images / whole videos: two videos sharing frames are not deduplicated frame by frame.
    * The batched attention needs ``sdpa`` or ``eager``; it can change the order of float reductions inside the
      attention kernel only, so results match the stock path to float rounding, not necessarily bit for bit
      (measured on CPU, fp32: identical with sdpa, <= 2e-8 with eager). Eager materialises the ``(n, H, L, L)``
      scores, so its batches are split at ``_EAGER_MAX_SCORES`` elements.
    * Tested on tiny Qwen2-VL / Qwen2.5-VL / Qwen3-VL models in fp32 on CPU. The other classes with an identical
      attention source (GLM-4V, Qwen3.5, ...) are patched but untested; bf16 / CUDA kernels are not exercised by
      the tests (``benchmarks/vision_tower.py --device cuda`` reports the max difference there).

Example:
    >>> handle = patch_vision_attention(model)               # doctest: +SKIP
    >>> with vision_feature_cache(model) as cache:           # doctest: +SKIP
    ...     out = model.generate(**inputs, max_new_tokens=8)
    ...     print(cache.stats)
    >>> handle.unpatch()                                     # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import itertools
import logging
import sys
import textwrap
import threading
import types
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Self

logger = logging.getLogger(__name__)

__all__ = [
    "AttentionPlan",
    "CacheStats",
    "VisionAttentionPatch",
    "VisionFeatureCache",
    "build_attention_plan",
    "dedup_encode",
    "encode_vision",
    "is_patched",
    "patch_qwen25_vision_attention",
    "patch_vision_attention",
    "supports_fast_vision_attention",
    "supports_vision_feature_cache",
    "unpatch_vision_attention",
    "vision_feature_cache",
]

# Attention implementations whose interface accepts a plain (batch, heads, L, head_dim) batch with no mask.
_BATCHABLE_IMPLEMENTATIONS = ("sdpa", "eager")
# eager materialises the (n, H, L, L) scores: cap one call at this many elements (512 MiB in fp32), so batching never
# needs much more memory than the stock per-chunk loop's largest chunk. SDPA kernels do not materialise the scores.
_EAGER_MAX_SCORES = 1 << 27
_PATCH_ATTR = "_unifiedreward_vision_attention_patch"


# ---------------------------------------------------------------------------------------------------------------------
# 1. Batched vision attention
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttentionPlan:
    """How to run the chunks of one ``cu_seqlens`` as a few equal-length batches.

    Attributes:
        seq_len: ``S``, total packed tokens (``cu_seqlens[-1]``).
        groups: ``((L, n), ...)``: ``n`` chunks of ``L`` tokens each, in the order they appear in the permuted
            sequence. Zero-length chunks are dropped.
        perm: ``(S,)`` long, ``perm[j]`` = original position of the ``j``-th token in group order; ``None`` when
            group order is the original order (e.g. all windows have the same length).
        inv_perm: ``(S,)`` long inverse of ``perm`` (``None`` with it).
    """

    seq_len: int
    groups: tuple[tuple[int, int], ...]
    perm: torch.Tensor | None
    inv_perm: torch.Tensor | None

    @property
    def num_chunks(self) -> int:
        return sum(n for _, n in self.groups)


def build_attention_plan(cu_seqlens: torch.Tensor) -> AttentionPlan:
    """Group the chunks of ``cu_seqlens`` by length (one host sync).

    Args:
        cu_seqlens: ``(num_chunks + 1,)`` int cumulative boundaries (``0, l0, l0+l1, ...``), any device.

    Returns:
        The :class:`AttentionPlan`; its index tensors live on ``cu_seqlens.device``. Groups are ordered by first
        appearance, so a sequence whose chunks of equal length are already consecutive needs no permutation.
    """
    bounds = [int(b) for b in cu_seqlens.tolist()]
    if not bounds or bounds[0] != 0:
        raise ValueError("cu_seqlens must start at 0")
    by_length: dict[int, list[int]] = {}
    for start, end in itertools.pairwise(bounds):
        if end > start:
            by_length.setdefault(end - start, []).append(start)
    seq_len = bounds[-1]
    groups = tuple((length, len(starts)) for length, starts in by_length.items())
    # Group order is the original order when each group is one run and the runs follow each other (always true for
    # a single group, e.g. equal windows or equal images).
    order = [start for length, starts in by_length.items() for start in starts]
    if order == sorted(order) and all(
        starts == list(range(starts[0], starts[0] + length * len(starts), length))
        for length, starts in by_length.items()
    ):
        return AttentionPlan(seq_len, groups, None, None)
    pieces = [
        (torch.tensor(starts, dtype=torch.long)[:, None] + torch.arange(length, dtype=torch.long)).reshape(-1)
        for length, starts in by_length.items()
    ]
    perm = torch.cat(pieces) if pieces else torch.empty(0, dtype=torch.long)
    inv_perm = torch.empty_like(perm)
    inv_perm[perm] = torch.arange(perm.numel(), dtype=torch.long)
    device = cu_seqlens.device
    return AttentionPlan(seq_len, groups, perm.to(device), inv_perm.to(device))


@functools.cache
def _reference_forward_source() -> str:
    from transformers.models.qwen2_5_vl import modeling_qwen2_5_vl

    return textwrap.dedent(inspect.getsource(modeling_qwen2_5_vl.Qwen2_5_VLVisionAttention.forward))


# The lines of the stock forward that the re-implementation in `_batched_forward` mirrors.
_REFERENCE_MARKERS = (
    "self.qkv(hidden_states).reshape(seq_length, 3, self.num_heads, -1).permute(1, 0, 2, 3).unbind(0)",
    "apply_rotary_pos_emb_vision(query_states, key_states, cos, sin)",
    "torch.split(tensor, lengths.tolist(), dim=2)",
    "attn_output = attn_output.reshape(seq_length, -1).contiguous()",
    "attn_output = self.proj(attn_output)",
)


@functools.cache
def _class_is_supported(cls: type) -> bool:
    module = sys.modules.get(cls.__module__)
    if module is None or not callable(getattr(module, "apply_rotary_pos_emb_vision", None)):
        return False
    if not callable(getattr(module, "eager_attention_forward", None)):
        return False
    try:
        reference = _reference_forward_source()
        source = textwrap.dedent(inspect.getsource(cls.forward))
    except (OSError, TypeError):  # pragma: no cover - sources not shipped
        return False
    if not all(marker in reference for marker in _REFERENCE_MARKERS):  # pragma: no cover - transformers changed
        logger.warning("Qwen2_5_VLVisionAttention.forward changed in this transformers; vision attention not patched")
        return False
    return source == reference


def supports_fast_vision_attention(module: torch.nn.Module) -> bool:
    """Whether ``module`` is a vision attention whose stock forward the batched path reproduces.

    True for classes whose ``forward`` source is identical to ``Qwen2_5_VLVisionAttention.forward`` of the
    installed transformers (Qwen2-VL ``VisionAttention``, ``Qwen2_5_VLVisionAttention``,
    ``Qwen3VLVisionAttention``, ...).
    """
    return _class_is_supported(type(module))


def _attention_modules(model: torch.nn.Module) -> list[torch.nn.Module]:
    return [m for m in model.modules() if supports_fast_vision_attention(m)]


class VisionAttentionPatch:
    """Handle of :func:`patch_vision_attention`: undo with :meth:`unpatch` or use as a context manager.

    Attributes:
        modules: the patched attention modules.
        stats: counters -- ``forwards`` (batched forwards run), ``attention_calls`` (attention-interface calls they
            made), ``fallbacks`` (stock forwards, e.g. flash attention), ``plans`` (grouping plans built).
    """

    def __init__(self) -> None:
        self.modules: list[torch.nn.Module] = []
        self._saved: list[tuple[torch.nn.Module, str, Any]] = []
        self._plans: list[tuple[torch.Tensor, AttentionPlan]] = []
        self.stats: dict[str, int] = {"forwards": 0, "attention_calls": 0, "fallbacks": 0, "plans": 0}

    @property
    def active(self) -> bool:
        return bool(self._saved)

    def plan_for(self, cu_seqlens: torch.Tensor) -> AttentionPlan:
        """The plan of ``cu_seqlens``, built once per tensor object (a tower forward passes the same tensor to all of
        its windowed blocks, and another one to all of its full-attention blocks)."""
        for tensor, plan in self._plans:
            if tensor is cu_seqlens:
                return plan
        plan = build_attention_plan(cu_seqlens)
        self.stats["plans"] += 1
        self._plans.insert(0, (cu_seqlens, plan))
        del self._plans[4:]
        return plan

    def unpatch(self) -> None:
        """Restore the stock forwards (idempotent)."""
        for module, attr, previous in reversed(self._saved):
            if previous is None:
                module.__dict__.pop(attr, None)
            else:
                module.__dict__[attr] = previous
            module.__dict__.pop(_PATCH_ATTR, None)
        self._saved.clear()
        self._plans.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.unpatch()

    def __repr__(self) -> str:
        return f"VisionAttentionPatch(modules={len(self.modules)}, active={self.active}, stats={self.stats})"


def _batched_forward(
    self: torch.nn.Module,
    hidden_states: torch.Tensor,
    cu_seqlens: torch.Tensor,
    position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
    max_seqlen: int | None = None,
    *,
    _handle: VisionAttentionPatch,
    _stock: Callable[..., torch.Tensor],
    **kwargs: Any,
) -> torch.Tensor:
    """Drop-in for the stock Qwen vision attention forward, one attention call per distinct chunk length.

    Args:
        hidden_states: ``(S, D)`` packed tokens of all images / frames.
        cu_seqlens: ``(num_chunks + 1,)`` attention boundaries (windows or whole images / frames).
        position_embeddings: ``(cos, sin)``, each ``(S, head_dim)``.
        max_seqlen: only used by the stock flash path.

    Returns:
        ``(S, D)`` attention output after ``proj``.
    """
    implementation = getattr(self.config, "_attn_implementation", None)
    if implementation not in _BATCHABLE_IMPLEMENTATIONS or kwargs.get("output_attentions"):
        _handle.stats["fallbacks"] += 1
        return _stock(
            hidden_states, cu_seqlens, position_embeddings=position_embeddings, max_seqlen=max_seqlen, **kwargs
        )
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    module = sys.modules[type(self).__module__]
    seq_length = hidden_states.shape[0]
    query_states, key_states, value_states = (
        self.qkv(hidden_states).reshape(seq_length, 3, self.num_heads, -1).permute(1, 0, 2, 3).unbind(0)
    )  # each (S, H, hd)
    cos, sin = position_embeddings
    query_states, key_states = module.apply_rotary_pos_emb_vision(query_states, key_states, cos, sin)

    plan = _handle.plan_for(cu_seqlens)
    if plan.seq_len != seq_length:
        raise ValueError(f"cu_seqlens covers {plan.seq_len} tokens but hidden_states has {seq_length}")
    if plan.perm is not None:
        query_states, key_states, value_states = (
            t.index_select(0, plan.perm) for t in (query_states, key_states, value_states)
        )
    attention_interface = ALL_ATTENTION_FUNCTIONS.get_interface(implementation, module.eager_attention_forward)
    dropout = 0.0 if not self.training else self.attention_dropout
    num_heads, head_dim = query_states.shape[1], query_states.shape[2]
    outputs = []
    offset = 0
    for length, total in plan.groups:
        per_call = total
        if implementation == "eager":
            per_call = max(1, min(total, _EAGER_MAX_SCORES // (num_heads * length * length)))
        for first in range(0, total, per_call):
            count = min(per_call, total - first)
            rows = slice(offset, offset + length * count)
            offset += length * count
            q, k, v = (
                t[rows].view(count, length, num_heads, head_dim).transpose(1, 2)
                for t in (query_states, key_states, value_states)
            )  # (n, H, L, hd)
            out, _ = attention_interface(
                self, q, k, v, attention_mask=None, scaling=self.scaling, dropout=dropout, is_causal=False, **kwargs
            )  # (n, L, H, hd)
            outputs.append(out.reshape(count * length, num_heads, head_dim))
    _handle.stats["forwards"] += 1
    _handle.stats["attention_calls"] += len(outputs)
    attn_output = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=0)
    if plan.inv_perm is not None:
        attn_output = attn_output.index_select(0, plan.inv_perm)
    attn_output = attn_output.reshape(seq_length, -1).contiguous()
    return self.proj(attn_output)


def patch_vision_attention(model: torch.nn.Module, *, strict: bool = True) -> VisionAttentionPatch:
    """Swap the forward of every supported vision-attention module of ``model`` for the batched one.

    Only instances are patched (``module.forward`` is set on the instance; a model loaded with an accelerate
    device map gets its hook's ``_old_forward`` replaced instead), so other models are unaffected. Patching a model
    that is already patched returns the existing handle.

    Args:
        model: a Qwen2-VL / Qwen2.5-VL / Qwen3-VL ``...ForConditionalGeneration``, its base model, or a bare vision
            tower.
        strict: raise when nothing can be patched (e.g. LLaVA-OneVision); with ``False`` return an empty handle.

    Returns:
        The :class:`VisionAttentionPatch` handle.

    Raises:
        TypeError: ``strict`` and no supported vision attention in ``model``.
    """
    modules = _attention_modules(model)
    existing = {id(h): h for m in modules if (h := m.__dict__.get(_PATCH_ATTR)) is not None and h.active}
    if existing:
        if len(existing) == 1 and all(_PATCH_ATTR in m.__dict__ for m in modules):
            return next(iter(existing.values()))
        raise RuntimeError("part of this model's vision attention is already patched by another handle")
    if not modules and strict:
        raise TypeError(
            f"{type(model).__name__} has no vision attention with the stock Qwen forward of this transformers "
            "version; nothing to patch"
        )
    handle = VisionAttentionPatch()
    for module in modules:
        attr = "forward"
        if "_old_forward" in module.__dict__ and hasattr(module, "_hf_hook"):
            attr = "_old_forward"  # accelerate hook: keep the hook, replace what it calls
        elif "forward" in module.__dict__:
            logger.warning("%s already has an instance-level forward; left unpatched", type(module).__name__)
            continue
        previous = module.__dict__.get(attr)
        stock = previous if previous is not None else types.MethodType(type(module).forward, module)
        patched = functools.partial(_batched_forward, module, _handle=handle, _stock=stock)
        module.__dict__[attr] = patched
        module.__dict__[_PATCH_ATTR] = handle
        handle._saved.append((module, attr, previous))
        handle.modules.append(module)
    return handle


#: Alias named after the model the optimisation targets (its windowed blocks gain the most).
patch_qwen25_vision_attention = patch_vision_attention


def unpatch_vision_attention(model: torch.nn.Module) -> bool:
    """Undo :func:`patch_vision_attention` on ``model``; returns whether anything was patched."""
    handles = {id(h): h for m in model.modules() if (h := m.__dict__.get(_PATCH_ATTR)) is not None}
    for handle in handles.values():
        handle.unpatch()
    return bool(handles)


def is_patched(model: torch.nn.Module) -> bool:
    """Whether any vision attention of ``model`` currently runs the batched forward."""
    return any((h := m.__dict__.get(_PATCH_ATTR)) is not None and h.active for m in model.modules())


# ---------------------------------------------------------------------------------------------------------------------
# 2. Vision feature reuse
# ---------------------------------------------------------------------------------------------------------------------


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


_guard = threading.local()
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


def _vision_base(model: torch.nn.Module) -> torch.nn.Module:
    """The module that owns ``visual`` and ``get_image_features`` (``model.model`` for ``...ForConditionalGeneration``)."""
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
