"""Flags of the video-QA evaluation (:class:`VideoQAArguments`) and the judge defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

from unifiedreward.eval.videoqa.data import DATASETS
from unifiedreward.judge.arguments import DTYPES, FAMILIES

__all__ = ["DEFAULT_JUDGE_MODEL", "DEFAULT_JUDGE_URL", "STAGES", "VideoQAArguments"]

STAGES: tuple[str, ...] = ("all", "answer", "grade")
DEFAULT_JUDGE_MODEL = "gpt-3.5-turbo-1106"
DEFAULT_JUDGE_URL = "https://api.openai.com/v1"


@dataclass
class VideoQAArguments:
    """Flags of the video-QA evaluation (every field is a ``--flag``; ``--config file.yaml`` sets defaults)."""

    dataset: str = field(metadata={"help": "Which benchmark's file layout: msrvtt, msvd or tgif.",
                                   "choices": list(DATASETS)})  # fmt: skip
    data_dir: str = field(
        metadata={
            "help": "Folder with the question files as upstream ships them (see unifiedreward.eval.videoqa.data)."
        }
    )
    output_dir: str = field(metadata={"help": "Folder for answers.jsonl, grades.jsonl and the results."})
    video_dir: str | None = field(default=None, metadata={"help": "Folder of the videos. Default: <data_dir>/videos."})
    stage: str = field(
        default="all",
        metadata={"help": "answer (policy only), grade (judge only; needs answers.jsonl) or all.",
                  "choices": list(STAGES)},
    )  # fmt: skip
    limit: int | None = field(default=None, metadata={"help": "Only the first N questions (in file order)."})
    chunk_size: int = field(
        default=16, metadata={"help": "Questions answered (or graded) and written together; the unit of resuming."}
    )
    overwrite: bool = field(default=False, metadata={"help": "Delete existing answers, grades and results first."})
    model: str | None = field(
        default=None,
        metadata={"help": "Policy VLM: checkpoint path or hub id (transformers), or the served name (openai)."},
    )
    policy_backend: str = field(
        default="transformers",
        metadata={"help": "transformers (policy in this process) or openai (an OpenAI-compatible server).",
                  "choices": ["transformers", "openai"]},
    )  # fmt: skip
    policy_base_url: str = field(
        default="http://localhost:8000/v1", metadata={"help": "openai policy: the server's API root."}
    )
    policy_api_key: str | None = field(default=None, metadata={"help": "openai policy: bearer token."})
    family: str | None = field(
        default=None,
        metadata={"help": "Prompt form: qwen (video part) or llava (frames as images). Default: from the "
                          "checkpoint's config (transformers), qwen (openai).", "choices": list(FAMILIES)},
    )  # fmt: skip
    dtype: str = field(default="auto", metadata={"help": "transformers policy: dtype.", "choices": list(DTYPES)})
    device_map: str | None = field(default=None, metadata={"help": "transformers policy: e.g. auto. Default: CPU."})
    attn_implementation: str | None = field(default=None, metadata={"help": "transformers policy: e.g. sdpa."})
    batch_size: int = field(default=4, metadata={"help": "transformers policy: prompts per forward pass."})
    num_frames: int = field(default=32, metadata={"help": "Frames sampled uniformly per video (upstream: 32)."})
    video_fps: float | None = field(
        default=None, metadata={"help": "Sample at this frame rate, capped at --num_frames."}
    )
    max_pixels: int | None = field(
        default=None, metadata={"help": "Downsize frames to at most this many pixels (upstream: 512x512 = 262144)."}
    )
    max_new_tokens: int = field(default=512, metadata={"help": "Policy answer length cap (upstream: 4096)."})
    judge_base_url: str | None = field(
        default=None,
        metadata={"help": f"Judge API root. Default: $OPENAI_BASE_URL, else {DEFAULT_JUDGE_URL}."},
    )
    judge_model: str | None = field(
        default=None, metadata={"help": f"Judge model. Default: $OPENAI_MODEL, else {DEFAULT_JUDGE_MODEL} (upstream)."}
    )
    judge_api_key: str | None = field(
        default=None, metadata={"help": "Judge bearer token. Default: $OPENAI_API_KEY (never written to outputs)."}
    )
    judge_max_concurrency: int = field(default=8, metadata={"help": "Judge requests in flight at once."})
    judge_timeout: float = field(default=60.0, metadata={"help": "Judge: seconds per socket operation."})
    judge_max_retries: int = field(default=5, metadata={"help": "Judge: retries of a transient failure (429, 5xx)."})
    judge_max_tokens: int = field(default=64, metadata={"help": "Judge answer length cap (a short dict)."})
    truncate_scores: bool = field(
        default=False, metadata={"help": "Apply upstream's int(score) (4.8 -> 4) before averaging."}
    )
    num_workers: int = field(default=4, metadata={"help": "Threads decoding videos."})
    plot: bool = field(default=True, metadata={"help": "Write results.png."})
    progress: bool = field(default=True, metadata={"help": "Show progress bars (stderr)."})
