"""Flags of ``infer+sift.py`` (:class:`PreferenceArguments`; every field is a ``--flag`` with help, ``--config
file.yaml`` sets defaults, see :func:`unifiedreward.args.parse_args`), their checks, and the strategy config they
describe."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from unifiedreward.judge.judge import ORDERS
from unifiedreward.judge.judge import SCORINGS as JUDGE_SCORINGS
from unifiedreward.preference.candidates import UNDERSTANDING_TASKS
from unifiedreward.preference.strategies import STRATEGIES, PointwiseConfig, TournamentConfig, UpstreamConfig

#: The judge's scorings, plus ``auto`` (each strategy's own default).
SCORINGS = ("auto", *JUDGE_SCORINGS)


def _f(default: Any, help: str, **extra: Any) -> Any:
    return field(default=default, metadata={"help": help, **extra})


@dataclass
class PreferenceArguments:
    """Preference-data construction for image / video understanding (sample -> judge -> sift -> DPO pairs)."""

    data_path: str = field(
        metadata={
            "help": "Input JSON list or JSONL of {'prompt', 'image'} (video: 'video' or 'image' as a video file, a "
            "frame folder or a list of frame files). 'id' is optional (default: the record's position); other "
            "keys are carried into the output."
        }
    )
    output_path: str = field(
        metadata={
            "help": "Preference pairs (kept records; a JSON list for .json, else JSONL). Beside it: "
            "<stem>.decisions.jsonl (one line per input, the resume log), <stem>.summary.json and the settings."
        }
    )
    task: str = _f("image_understanding", "What the data is.", choices=list(UNDERSTANDING_TASKS))
    image_folder: str | None = _f(None, "Folder that relative image paths are resolved against.")
    video_folder: str | None = _f(None, "Folder that relative video paths / frame folders / frames are resolved "
                                        "against (default: --image_folder, as upstream lists frames there).")  # fmt: skip
    # policy
    policy: str | None = _f(None, "Policy VLM (local path or hub id) loaded in-process, e.g. Qwen/Qwen2.5-VL-7B-Instruct.")
    policy_base_url: str | None = _f(None, "OpenAI-compatible server of the policy (vLLM / SGLang), e.g. "
                                           "http://localhost:8000/v1; instead of --policy.")  # fmt: skip
    policy_model: str | None = _f(None, "Served model name of the policy server (default: --policy or 'policy').")
    policy_family: str | None = _f(None, "Prompt family of a served policy: qwen or llava (in-process: from the "
                                         "checkpoint).", choices=["qwen", "llava"])  # fmt: skip
    num_candidates: int = _f(10, "Answers sampled per input. Upstream: 5 rounds of 2 samples = 10.")
    temperature: float = _f(0.7, "Policy sampling temperature (upstream 0.7).")
    top_p: float = _f(1.0, "Policy nucleus-sampling mass.")
    max_new_tokens: int = _f(4096, "Longest policy answer in tokens (upstream 4096).")
    seed: int = _f(0, "Run seed; each input's sampling seed is derived from it and the input id.")
    policy_batch_size: int = _f(8, "Rows (prompt x sample) per policy forward (in-process).")
    # judge
    reward_model: str | None = _f(None, "Reward model (local path or hub id) loaded in-process.")
    judge_base_url: str | None = _f(None, "OpenAI-compatible server of the reward model; instead of --reward_model.")
    judge_model: str | None = _f(None, "Served model name of the judge server (default: UnifiedReward).")
    judge_family: str | None = _f(None, "Prompt family of the judge: qwen or llava (in-process default: from the "
                                        "checkpoint; server default: qwen).", choices=["qwen", "llava"])  # fmt: skip
    judge_version: str = _f("1.0", "Template version of the judge (1.0, 2.0, ...).")
    judge_batch_size: int = _f(8, "Prompts per reward-model forward (in-process).")
    judge_max_new_tokens: int = _f(1024, "Longest judge answer in tokens.")
    judge_per_input: bool = _f(True, "Judge each input's candidates in their own batches: results do not depend on "
                                     "chunking or sharding (byte-identical resume and merge). false: batch a whole "
                                     "chunk's requests together (faster on a GPU for small sets; the last float "
                                     "bits may then depend on the batch).")  # fmt: skip
    # strategy
    strategy: str = _f("upstream", "Sifting strategy (docs/preference.md).", choices=sorted(STRATEGIES))
    order: str | None = _f(None, "Pair order of the judge (default: the strategy's: as_given for upstream, both for "
                                 "tournament).", choices=list(ORDERS))  # fmt: skip
    scoring: str | None = _f(None, "generate, probabilities or auto (default: the strategy's: generate for upstream, "
                                   "auto for tournament / pointwise).", choices=list(SCORINGS))  # fmt: skip
    fit: str = _f("bradley_terry", "Tournament strengths.", choices=["bradley_terry", "win_rate"])
    prior: float = _f(0.1, "Tournament Bradley-Terry virtual wins per side of every pair.")
    min_probability: float = _f(0.6, "Tournament: keep when P(chosen beats rejected) is above this.")
    min_margin: float = _f(0.0, "Pointwise: keep when (chosen - rejected) / score range is above this.")
    # media
    num_frames: int = _f(8, "Frames sampled per video (upstream's judge saw 8).")
    video_fps: float | None = _f(None, "Sample video files at this rate, capped at --num_frames.")
    max_pixels: int | None = _f(None, "Downsize images and frames to at most this many pixels.")
    # running
    device_map: str | None = _f(None, "device_map of in-process models (e.g. auto, cuda:0, cpu).")
    dtype: str = _f("auto", "dtype of in-process models (auto, bfloat16, float16, float32).")
    attn_implementation: str | None = _f(None, "Attention kernel of in-process models (sdpa, flash_attention_2).")
    max_concurrency: int = _f(16, "Requests in flight per server.")
    timeout: float = _f(300.0, "Seconds per socket operation of a server request.")
    max_retries: int = _f(3, "Retries of a failed server request (transient errors only).")
    chunk_size: int = _f(16, "Inputs sampled, sifted and written together; a killed run loses at most one chunk.")
    num_workers: int = _f(2, "Threads decoding media one chunk ahead.")
    shard: str | None = _f(None, "'i/n': process only the inputs whose position is i modulo n (then --merge).")
    merge: bool = _f(False, "Join the shards' decision logs (<stem>.shard-*-of-N.decisions.jsonl) into "
                            "--output_path; no sampling or judging.")  # fmt: skip
    overwrite: bool = _f(False, "Delete this run's outputs and start over.")
    progress: bool = _f(True, "Show a progress bar (stderr).")


def check_arguments(args: PreferenceArguments, *, policy_injected: bool = False, judge_injected: bool = False) -> None:
    """Raise ``ValueError`` naming the flag for the first invalid value or combination."""
    checks = [
        (args.task in UNDERSTANDING_TASKS, f"--task must be one of {UNDERSTANDING_TASKS}"),
        (args.strategy in STRATEGIES, f"--strategy must be one of {sorted(STRATEGIES)}"),
        (args.num_candidates >= 2, "--num_candidates must be >= 2"),
        (args.temperature >= 0, "--temperature must be >= 0"),
        (args.max_new_tokens >= 1 and args.judge_max_new_tokens >= 1, "--*max_new_tokens must be >= 1"),
        (args.chunk_size >= 1 and args.num_workers >= 0, "--chunk_size must be >= 1 and --num_workers >= 0"),
        (args.num_frames >= 1, "--num_frames must be >= 1"),
        (not (args.merge and args.shard), "--merge joins all shards: do not pass --shard with it"),
        (args.merge or policy_injected or bool(args.policy) != bool(args.policy_base_url),
         "give exactly one of --policy and --policy_base_url"),
        (args.merge or judge_injected or bool(args.reward_model) != bool(args.judge_base_url),
         "give exactly one of --reward_model and --judge_base_url"),
        (args.strategy != "upstream" or args.num_candidates % 2 == 0,
         "--num_candidates must be even for --strategy upstream (rounds of 2)"),
    ]  # fmt: skip
    for ok, message in checks:
        if not ok:
            raise ValueError(message)


def strategy_config(args: PreferenceArguments) -> UpstreamConfig | TournamentConfig | PointwiseConfig:
    """The strategy config the flags describe (unset ``--order`` / ``--scoring`` keep the strategy's defaults)."""
    overrides: dict[str, Any] = {}
    if args.scoring is not None:
        overrides["scoring"] = args.scoring
    if args.strategy == "upstream":
        return UpstreamConfig(**overrides, **({"order": args.order} if args.order else {}))
    if args.strategy == "tournament":
        if args.order:
            overrides["order"] = args.order
        return TournamentConfig(fit=args.fit, prior=args.prior, min_probability=args.min_probability, **overrides)
    return PointwiseConfig(min_margin=args.min_margin, **overrides)
