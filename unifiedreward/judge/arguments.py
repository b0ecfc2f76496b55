"""Flags of the judging commands and the backend they describe.

:class:`BackendArguments` (which backend, how to decode) is shared by ``unifiedreward judge`` and the benchmark
runner; :class:`JudgeArguments` adds the judge CLI's own flags. :func:`build_backend` turns the flags into a
:class:`~unifiedreward.judge.base.Backend`, :func:`resolve_family` picks the prompt family, :func:`judge_options`
the ``RewardJudge`` keywords, and :func:`judge_settings` the settings stored beside an output (a resumed run must
use the same ones).
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unifiedreward.errors import UnifiedRewardError
from unifiedreward.io.shards import parse_shard
from unifiedreward.judge.judge import ORDERS, SCORINGS
from unifiedreward.protocol import VERSIONS

logger = logging.getLogger(__name__)

__all__ = [
    "BACKENDS",
    "DTYPES",
    "FAMILIES",
    "OPENAI_DEFAULT_FAMILY",
    "OPENAI_DEFAULT_MODEL",
    "ORDERS",
    "SCORINGS",
    "SETTINGS_KEYS",
    "BackendArguments",
    "JudgeArguments",
    "build_backend",
    "check_judge_arguments",
    "judge_options",
    "judge_settings",
    "resolve_family",
]

BACKENDS: tuple[str, ...] = ("transformers", "openai")
FAMILIES: tuple[str, ...] = ("qwen", "llava")
DTYPES: tuple[str, ...] = ("auto", "float32", "bfloat16", "float16")

#: Family used with ``--backend openai`` when ``--family`` is not given.
OPENAI_DEFAULT_FAMILY = "qwen"
#: Served model name used with ``--backend openai`` when ``--model`` is not given (upstream's --served-model-name).
OPENAI_DEFAULT_MODEL = "UnifiedReward"


# ------------------------------------------------------------------------------------------------------ arguments
@dataclass
class BackendArguments:
    """Which judging backend to use and how to decode (shared by ``unifiedreward judge`` and the benchmark runner)."""

    backend: str = field(
        default="transformers",
        metadata={"help": "transformers (model in this process) or openai (an OpenAI-compatible server).",
                  "choices": list(BACKENDS)},
    )  # fmt: skip
    model: str | None = field(
        default=None,
        metadata={
            "help": "transformers: checkpoint path or hub id (required). openai: the served model name "
            f"(default {OPENAI_DEFAULT_MODEL!r})."
        },
    )
    dtype: str = field(default="auto", metadata={"help": "transformers: model dtype.", "choices": list(DTYPES)})
    device_map: str | None = field(
        default=None, metadata={"help": "transformers: e.g. 'auto' or 'cuda:0'. Default: CPU."}
    )
    attn_implementation: str | None = field(
        default=None, metadata={"help": "transformers: e.g. sdpa, eager, flash_attention_2. Default: transformers'."}
    )
    batch_size: int = field(default=8, metadata={"help": "transformers: prompts per forward pass."})
    base_url: str = field(
        default="http://localhost:8080/v1", metadata={"help": "openai: the server's API root (ends in /v1)."}
    )
    api_key: str | None = field(
        default=None, metadata={"help": "openai: bearer token. Default: $OPENAI_API_KEY, else 'EMPTY'."}
    )
    max_concurrency: int = field(default=16, metadata={"help": "openai: requests in flight at once."})
    timeout: float = field(default=120.0, metadata={"help": "openai: seconds per socket operation of a request."})
    max_retries: int = field(default=3, metadata={"help": "openai: retries of a transient failure (429, 5xx, ...)."})
    health_check: bool = field(
        default=True, metadata={"help": "openai: check at startup that the server serves --model."}
    )
    family: str | None = field(
        default=None,
        metadata={
            "help": "Prompt family. Default: from the checkpoint's config (transformers), "
            f"{OPENAI_DEFAULT_FAMILY!r} (openai; pass llava for LLaVA servers).",
            "choices": list(FAMILIES),
        },
    )
    version: str = field(
        default="1.0",
        metadata={
            "help": "Template generation (1.0, 1.5, 2.0, think, ...) used when a request names no template.",
            "choices": list(VERSIONS),
        },
    )
    max_new_tokens: int = field(default=512, metadata={"help": "Answer length cap (CoT versions need 1-2k)."})


@dataclass(kw_only=True)
class JudgeArguments(BackendArguments):
    """Flags of ``unifiedreward judge`` (every field is a ``--flag``; ``--config file.yaml`` sets defaults)."""

    input: str = field(metadata={"help": "JSONL file of requests, one per line (see docs/judge_cli.md)."})
    output: str = field(
        metadata={"help": "JSONL file of results. An existing file is resumed: ids already in it are skipped."}
    )
    media_root: str | None = field(
        default=None, metadata={"help": "Folder that relative media paths start from. Default: the input's folder."}
    )
    chunk_size: int = field(
        default=64,
        metadata={"help": "Requests judged and written together; a killed run loses at most one chunk."},
    )
    shard: str | None = field(
        default=None,
        metadata={"help": "'i/n': judge only requests whose position in the input is i modulo n (e.g. 0/4)."},
    )
    overwrite: bool = field(
        default=False,
        metadata={
            "help": "Delete an existing --output (and its .settings.json and .summary.json) and start over instead "
            "of resuming. Needed to change a setting of a started run (--model, --version, --order, ...)."
        },
    )
    merge: list[str] | None = field(
        default=None,
        metadata={
            "help": "Merge mode: shard outputs to join into --output, in --input order (no judging). Fails on "
            "duplicate, unknown or missing ids."
        },
    )
    allow_missing: bool = field(
        default=False, metadata={"help": "Merge mode: write the merged file even if some input ids are missing."}
    )
    order: str = field(
        default="as_given",
        metadata={
            "help": "Pair order (position-bias control): as_given, random (seeded coin flip per pair), both "
            "(judge both orders and combine).",
            "choices": list(ORDERS),
        },
    )
    seed: int = field(default=0, metadata={"help": "Seed of --order random."})
    scoring: str = field(
        default="generate",
        metadata={"help": "generate (parse the answer text) or probabilities (score answers from logits).",
                  "choices": list(SCORINGS)},
    )  # fmt: skip
    num_frames: int = field(
        default=8, metadata={"help": "Frames sampled per video (a request's num_frames overrides it)."}
    )
    video_fps: float | None = field(
        default=None, metadata={"help": "Sample videos at this frame rate, capped at num_frames. Default: uniform."}
    )
    max_pixels: int | None = field(
        default=None, metadata={"help": "Downsize images and video frames to at most this many pixels."}
    )
    num_workers: int = field(
        default=4, metadata={"help": "Threads decoding media (the next chunk is decoded while one is judged)."}
    )
    progress: bool = field(default=True, metadata={"help": "Show a progress bar over requests (stderr)."})


# ------------------------------------------------------------------------------------------------------- backend
def judge_options(args: JudgeArguments, judge_type: type | None = None) -> dict[str, Any]:
    """The ``order`` / ``seed`` / ``scoring`` keywords to pass to ``RewardJudge``, as far as it accepts them.

    Raises:
        UnifiedRewardError: a non-default value was asked for that this ``RewardJudge`` does not support.
    """
    if judge_type is None:
        from unifiedreward.judge.judge import RewardJudge as judge_type
    parameters = inspect.signature(judge_type.__init__).parameters
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    wanted = {"order": (args.order, "as_given"), "seed": (args.seed, 0), "scoring": (args.scoring, "generate")}
    options: dict[str, Any] = {}
    for name, (value, default) in wanted.items():
        if name in parameters or accepts_any:
            options[name] = value
        elif value != default:
            raise UnifiedRewardError(f"--{name} {value} is not supported by this version of RewardJudge")
    return options


def _read_model_family(model: str) -> str | None:
    """The family of a checkpoint from its config alone (no weights); ``None`` if the config cannot be read."""
    try:
        from transformers import PretrainedConfig

        from unifiedreward.modeling import model_family

        config, _ = PretrainedConfig.get_config_dict(model)
        return model_family(config)
    except Exception as exc:  # noqa: BLE001 - fall back to loading the model, whose loader reports errors well
        logger.debug("cannot read the family of %s from its config: %s", model, exc)
        return None


def resolve_family(args: JudgeArguments, backend: Any = None) -> str:
    """``--family``, else: the injected backend's model, the checkpoint's config (transformers), or
    :data:`OPENAI_DEFAULT_FAMILY` (openai, or an injected backend without a model)."""
    if args.family:
        return args.family
    model = getattr(backend, "model", None) if backend is not None else None
    if model is not None and not isinstance(model, str):
        from unifiedreward.modeling import model_family

        return model_family(model)
    if backend is None and args.backend == "transformers" and args.model:
        family = _read_model_family(args.model)
        if family is not None:
            logger.info("prompt family %s (from the config of %s)", family, args.model)
            return family
        return ""  # decided after loading the model
    logger.info("prompt family %s (default; pass --family llava for LLaVA checkpoints)", OPENAI_DEFAULT_FAMILY)
    return OPENAI_DEFAULT_FAMILY


def build_backend(args: JudgeArguments) -> Any:
    """The backend the flags describe (loads the model for ``transformers``; checks the server for ``openai``)."""
    if args.backend == "transformers":
        from unifiedreward.judge.hf_backend import TransformersBackend

        logger.info("loading %s", args.model)
        return TransformersBackend.from_pretrained(
            args.model,
            batch_size=args.batch_size,
            dtype=args.dtype,
            device_map=args.device_map,
            attn_implementation=args.attn_implementation,
        )
    from unifiedreward.judge.openai_backend import OpenAIBackend

    backend = OpenAIBackend(
        args.base_url,
        args.model or OPENAI_DEFAULT_MODEL,
        api_key=args.api_key,
        max_concurrency=args.max_concurrency,
        timeout=args.timeout,
        max_retries=args.max_retries,
    )
    if args.health_check:
        entry = backend.health_check()
        logger.info("server %s serves %s", args.base_url, entry.get("id"))
    return backend


def check_judge_arguments(args: JudgeArguments, *, injected: bool = False) -> None:
    """Check flag values and combinations before anything is read or loaded.

    Args:
        args: the flags.
        injected: a ready backend is passed in (then ``--model`` is not required).

    Raises:
        ValueError: naming the flag.
    """
    checks = [
        (args.backend in BACKENDS, f"--backend must be one of {BACKENDS}"),
        (args.chunk_size >= 1, "--chunk_size must be >= 1"),
        (args.batch_size >= 1, "--batch_size must be >= 1"),
        (args.num_frames >= 1, "--num_frames must be >= 1"),
        (args.video_fps is None or args.video_fps > 0, "--video_fps must be > 0"),
        (args.max_pixels is None or args.max_pixels >= 1, "--max_pixels must be >= 1"),
        (args.num_workers >= 0, "--num_workers must be >= 0"),
        (args.max_new_tokens >= 1, "--max_new_tokens must be >= 1"),
        (args.order in ORDERS, f"--order must be one of {ORDERS}"),
        (args.scoring in SCORINGS, f"--scoring must be one of {SCORINGS}"),
        (args.family in (None, *FAMILIES), f"--family must be one of {FAMILIES}"),
        (args.version in VERSIONS, f"--version must be one of {VERSIONS}"),
        (
            injected or args.backend != "transformers" or bool(args.model),
            "--model is required with --backend transformers",
        ),
        (Path(args.input).resolve() != Path(args.output).resolve(), "--output must differ from --input"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)


# ------------------------------------------------------------------------------------------------------ settings
#: The settings that define a judge output. They are stored in ``<output>.settings.json`` by the first run; a
#: resumed run that changes one of them is refused (``SettingsError``; ``--overwrite`` starts over).
SETTINGS_KEYS: tuple[str, ...] = (
    "input", "shard", "model", "family", "version", "order", "seed", "scoring", "max_new_tokens", "num_frames",
    "video_fps", "max_pixels",
)  # fmt: skip


def judge_settings(args: JudgeArguments, family: str | None) -> dict[str, Any]:
    """The settings stored beside a judge output: :data:`SETTINGS_KEYS`, plus ``backend`` and ``media_root``, which
    are stored for information but may change between runs (e.g. the same checkpoint moved behind a server).

    Args:
        args: the flags.
        family: the prompt family resolved from the flags or the checkpoint's config (``""`` or ``None``: not known
            before the model loads; then ``--family`` as given is stored).

    Returns:
        A JSON-ready dict. ``input`` is the resolved path of ``--input``, ``shard`` is ``"i/n"`` or ``None``,
        ``model`` is ``--model`` (with openai's default name filled in), other values are the flags as given.
    """
    shard = parse_shard(args.shard)
    model = args.model
    if args.backend == "openai" and not model:
        model = OPENAI_DEFAULT_MODEL
    return {
        "input": str(Path(args.input).resolve()),
        "shard": f"{shard[0]}/{shard[1]}" if shard else None,
        "model": model,
        "family": family or args.family,
        "version": args.version,
        "order": args.order,
        "seed": args.seed,
        "scoring": args.scoring,
        "max_new_tokens": args.max_new_tokens,
        "num_frames": args.num_frames,
        "video_fps": args.video_fps,
        "max_pixels": args.max_pixels,
        "backend": args.backend,
        "media_root": args.media_root,
    }
