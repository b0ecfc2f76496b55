"""Cheap vision encoding for Qwen-VL reward models: batched windowed attention and per-call feature reuse.

The vision tower dominates a judging forward (about 70% of a batched Qwen2.5-VL-7B forward with two 448x448 images
per prompt). Two independent tools cut that cost; both are exact (same features, same logits, same greedy text up
to float reassociation, see the tests) and both patch *instances*, never classes, so two models in one process are
independent.

Both tools live in their own modules and are re-exported here:

1. :mod:`unifiedreward.judge.vision_attention` -- batched vision attention (:func:`patch_vision_attention`, alias
   :func:`patch_qwen25_vision_attention`): one attention call per distinct window / image length instead of one
   per chunk, for ``sdpa`` / ``eager`` towers.
2. :mod:`unifiedreward.judge.vision_cache` (store and deduplication) and :mod:`unifiedreward.judge.vision_hooks`
   (model wiring) -- per-call vision feature reuse (:func:`vision_feature_cache`, :class:`VisionFeatureCache`,
   :func:`encode_vision`): every distinct image / video is encoded once per judging call, matched bit-exactly.

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

from unifiedreward.judge.vision_attention import (
    AttentionPlan,
    VisionAttentionPatch,
    build_attention_plan,
    is_patched,
    patch_qwen25_vision_attention,
    patch_vision_attention,
    supports_fast_vision_attention,
    unpatch_vision_attention,
)
from unifiedreward.judge.vision_cache import CacheStats, VisionFeatureCache, dedup_encode
from unifiedreward.judge.vision_hooks import encode_vision, supports_vision_feature_cache, vision_feature_cache

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
