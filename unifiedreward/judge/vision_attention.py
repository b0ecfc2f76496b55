"""Batched vision attention for Qwen-VL towers (:func:`patch_vision_attention`, alias
:func:`patch_qwen25_vision_attention`).

Part of :mod:`unifiedreward.judge.vision` (see its limits); this module patches attention *instances*, never
classes, so two models in one process are independent.

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
"""

from __future__ import annotations

import functools
import inspect
import itertools
import logging
import sys
import textwrap
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Self

logger = logging.getLogger(__name__)

__all__ = [
    "AttentionPlan",
    "VisionAttentionPatch",
    "build_attention_plan",
    "is_patched",
    "patch_qwen25_vision_attention",
    "patch_vision_attention",
    "supports_fast_vision_attention",
    "unpatch_vision_attention",
]


# Attention implementations whose interface accepts a plain (batch, heads, L, head_dim) batch with no mask.
_BATCHABLE_IMPLEMENTATIONS = ("sdpa", "eager")
# eager materialises the (n, H, L, L) scores: cap one call at this many elements (512 MiB in fp32), so batching never
# needs much more memory than the stock per-chunk loop's largest chunk. SDPA kernels do not materialise the scores.
_EAGER_MAX_SCORES = 1 << 27
_PATCH_ATTR = "_unifiedreward_vision_attention_patch"




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
