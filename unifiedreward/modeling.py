"""Loading a reward model: the one entry point users call.

:func:`load_reward_model` loads a Hugging Face vision-language checkpoint (a local ``save_pretrained`` folder or a
hub id) with ``AutoConfig`` -> ``AutoModelForImageTextToText`` -> ``AutoProcessor``, after checking that its
architecture is one this package knows how to prompt (see :data:`SUPPORTED_MODEL_TYPES`).

Example:
    >>> model, processor = load_reward_model("CodeGoat24/UnifiedReward-qwen-7b", dtype="bfloat16")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from unifiedreward.errors import ModelLoadError

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PretrainedConfig, PreTrainedModel, ProcessorMixin

__all__ = ["SUPPORTED_MODEL_TYPES", "load_reward_model", "model_family", "resolve_dtype"]

logger = logging.getLogger(__name__)

#: Config ``model_type`` -> prompt family (``"qwen"``: ``{"type": "image"}`` content parts and the Qwen chat
#: template; ``"llava"``: literal ``<image>`` tokens). All of these are mapped by ``AutoModelForImageTextToText``
#: in transformers 5.23; ``qwen3_vl_moe``, ``qwen3_5`` and ``qwen3_5_moe`` share the Qwen3-VL processor.
SUPPORTED_MODEL_TYPES: dict[str, str] = {
    "qwen2_vl": "qwen",
    "qwen2_5_vl": "qwen",
    "qwen3_vl": "qwen",
    "qwen3_vl_moe": "qwen",
    "qwen3_5": "qwen",
    "qwen3_5_moe": "qwen",
    "llava_onevision": "llava",
}

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}

# Hints for checkpoints people commonly try that need another code base.
_UNSUPPORTED_HINTS = {
    "llava_qwen": (
        "this is an original LLaVA-NeXT/LLaVA-OneVision checkpoint (e.g. UnifiedReward-7b); it needs the LLaVA "
        "code base or a conversion to the transformers 'llava_onevision' format"
    ),
}

# Exceptions that mean "this checkpoint could not be loaded" (missing files, bad config, bad weights, missing
# optional dependency), re-raised as ModelLoadError with the original as the cause.
_LOAD_ERRORS = (OSError, ValueError, KeyError, TypeError, RuntimeError, ImportError, AttributeError)


def resolve_dtype(dtype: str | torch.dtype) -> str | torch.dtype:
    """Validate a ``dtype`` argument.

    Args:
        dtype: ``"auto"`` (the checkpoint's ``dtype``), ``"float32"``, ``"bfloat16"``, ``"float16"`` or a floating
            ``torch.dtype``.

    Returns:
        ``"auto"`` or the ``torch.dtype``.

    Raises:
        ValueError: any other value.
    """
    if isinstance(dtype, torch.dtype):
        if not dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating-point torch dtype, got {dtype}")
        return dtype
    if isinstance(dtype, str):
        if dtype == "auto":
            return "auto"
        if dtype in _DTYPES:
            return _DTYPES[dtype]
    raise ValueError(f"dtype must be 'auto', {', '.join(repr(k) for k in _DTYPES)} or a torch.dtype, got {dtype!r}")


def _model_type_of(model_or_config: Any) -> str | None:
    if isinstance(model_or_config, str):
        return model_or_config
    if isinstance(model_or_config, dict):
        return model_or_config.get("model_type")
    config = getattr(model_or_config, "config", model_or_config)
    return getattr(config, "model_type", None)


def _unsupported_message(name: str, model_type: str | None) -> str:
    supported = ", ".join(sorted(SUPPORTED_MODEL_TYPES))
    message = (
        f"{name}: model_type {model_type!r} is not a supported reward-model architecture (supported: {supported})"
    )
    hint = _UNSUPPORTED_HINTS.get(model_type or "")
    return f"{message}; {hint}" if hint else message


def model_family(model_or_config: PreTrainedModel | PretrainedConfig | dict | str) -> str:
    """The prompt family of a model: ``"qwen"`` or ``"llava"``.

    Args:
        model_or_config: a model (its ``config`` is used), a config, a config dict or a ``model_type`` string.

    Returns:
        ``SUPPORTED_MODEL_TYPES[model_type]``.

    Raises:
        ModelLoadError: the model type is not in :data:`SUPPORTED_MODEL_TYPES`.
    """
    model_type = _model_type_of(model_or_config)
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ModelLoadError(_unsupported_message(type(model_or_config).__name__, model_type))
    return SUPPORTED_MODEL_TYPES[model_type]


def _looks_like_local_path(name: str) -> bool:
    """Whether ``name`` can only be a filesystem path (a hub id is ``repo`` or ``namespace/repo``)."""
    return name.startswith(("/", ".", "~", "\\")) or name.count("/") > 1 or "\\" in name or ":" in name


def _describe_device(model: PreTrainedModel) -> str:
    device_map = getattr(model, "hf_device_map", None)
    if device_map:
        return "device_map " + ", ".join(sorted({str(v) for v in device_map.values()}))
    try:
        return str(next(model.parameters()).device)
    except StopIteration:  # pragma: no cover - a model without parameters
        return "unknown"


def load_reward_model(
    name_or_path: str | Path,
    *,
    dtype: str | torch.dtype = "auto",
    device_map: str | dict[str, Any] | None = None,
    attn_implementation: str | None = None,
    trust_remote_code: bool = False,
    revision: str | None = None,
    local_files_only: bool | None = None,
) -> tuple[PreTrainedModel, ProcessorMixin]:
    """Load a reward model and its processor.

    What is loaded from where: ``config.json`` (via ``AutoConfig``), the weights (``model.safetensors`` or
    shards, via ``AutoModelForImageTextToText``) and the processor files (``processor_config.json``,
    ``tokenizer.json``, ``tokenizer_config.json``, ``chat_template.jinja``..., via ``AutoProcessor``), all from
    ``name_or_path``: a local folder written by ``save_pretrained``, or a hub model id resolved through the
    Hugging Face cache (downloaded unless offline, ``HF_HUB_OFFLINE=1`` or ``local_files_only=True``). The config
    is read first, so unsupported checkpoints fail before any weight is read.

    Args:
        name_or_path: local folder or hub model id.
        dtype: ``"auto"`` (the dtype stored in the config), ``"float32"``, ``"bfloat16"``, ``"float16"`` or a
            ``torch.dtype``.
        device_map: passed to ``from_pretrained`` (e.g. ``"auto"``, ``"cuda:0"`` or a dict; needs ``accelerate``);
            ``None`` loads on CPU.
        attn_implementation: e.g. ``"sdpa"``, ``"eager"``, ``"flash_attention_2"``; ``None`` lets transformers pick.
        trust_remote_code: allow custom code from the checkpoint. Off unless asked for explicitly.
        revision: branch, tag or commit of a hub checkpoint.
        local_files_only: ``True`` never contacts the hub; ``None`` keeps the transformers default (which honours
            ``HF_HUB_OFFLINE``).

    Returns:
        ``(model, processor)``: the ``*ForConditionalGeneration`` model in ``eval()`` mode and its processor.

    Raises:
        ValueError: a bad ``dtype``.
        ModelLoadError: the path or id does not exist or has no config, the ``model_type`` is not in
            :data:`SUPPORTED_MODEL_TYPES`, or the weights or processor cannot be loaded (the original exception is
            chained as ``__cause__``).
    """
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor, PretrainedConfig

    torch_dtype = resolve_dtype(dtype)
    name = str(name_or_path)
    hub_kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if revision is not None:
        hub_kwargs["revision"] = revision
    if local_files_only is not None:
        hub_kwargs["local_files_only"] = local_files_only

    # 1. The raw config dict: tells the model type without needing transformers to know it.
    local = Path(name).expanduser()
    if local.is_dir() and not (local / "config.json").is_file():
        raise ModelLoadError(f"{name!r} is a directory without a config.json: not a saved model")
    if not local.exists() and _looks_like_local_path(name):
        raise ModelLoadError(f"{name!r} does not exist (and is not a hub model id)")
    try:
        config_dict, _ = PretrainedConfig.get_config_dict(
            name, **{k: v for k, v in hub_kwargs.items() if k != "trust_remote_code"}
        )
    except _LOAD_ERRORS as error:
        where = "" if local.exists() else " (no such local path; tried as a hub model id)"
        raise ModelLoadError(f"cannot read a model config from {name!r}{where}: {error}") from error
    model_type = config_dict.get("model_type")
    if not model_type:
        raise ModelLoadError(f"the config of {name!r} has no model_type: not a transformers model config")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ModelLoadError(_unsupported_message(name, model_type))

    # 2. The config object, then the weights and the processor.
    try:
        config = AutoConfig.from_pretrained(name, **hub_kwargs)
    except _LOAD_ERRORS as error:
        raise ModelLoadError(f"cannot build the {model_type!r} config of {name!r}: {error}") from error
    model_kwargs: dict[str, Any] = {**hub_kwargs, "config": config, "dtype": torch_dtype}
    if device_map is not None:
        model_kwargs["device_map"] = device_map
    if attn_implementation is not None:
        model_kwargs["attn_implementation"] = attn_implementation
    try:
        model = AutoModelForImageTextToText.from_pretrained(name, **model_kwargs)
    except _LOAD_ERRORS as error:
        raise ModelLoadError(f"cannot load the {model_type!r} weights of {name!r}: {error}") from error
    try:
        processor = AutoProcessor.from_pretrained(name, **hub_kwargs)
    except _LOAD_ERRORS as error:
        raise ModelLoadError(f"cannot load the processor of {name!r}: {error}") from error

    model.eval()
    logger.info(
        "loaded %s (model_type=%s, family=%s) from %s: dtype=%s, device=%s, %s parameters, processor %s",
        type(model).__name__,
        model_type,
        SUPPORTED_MODEL_TYPES[model_type],
        name,
        model.dtype,
        _describe_device(model),
        f"{sum(p.numel() for p in model.parameters()):,}",
        type(processor).__name__,
    )
    return model, processor
