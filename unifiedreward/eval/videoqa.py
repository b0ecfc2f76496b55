"""Video question answering (MSRVTT-QA, MSVD-QA, TGIF-QA): answer with a policy VLM, grade with an LLM judge.

This re-creates UnifiedReward's ``benchmark_evaluation/DPO_eval`` (protocol §6.7, §2.4), used to compare a policy
before and after DPO:

1. **Answer** (``--stage answer``): each question is asked about its video with no instruction around it (a chat
   prompt holding the video and the question; LLaVA checkpoints get the frames as images, ``"<image>\\n" * frames +
   question``, as upstream). The policy runs in this process (:class:`~unifiedreward.judge.hf_backend.TransformersBackend`)
   or behind an OpenAI-compatible server (``--policy_backend openai``). Greedy decoding.
2. **Grade** (``--stage grade``): a judge behind any OpenAI-compatible endpoint (``--judge_base_url``,
   ``--judge_model``, ``--judge_api_key``, or ``$OPENAI_BASE_URL`` / ``$OPENAI_MODEL`` / ``$OPENAI_API_KEY``;
   upstream used ``gpt-3.5-turbo-1106``) receives the templates ``T-GPT-JUDGE-SYSTEM`` / ``T-GPT-JUDGE-USER`` and
   answers ``{'pred': 'yes'|'no', 'score': 0-5}``, read by :func:`unifiedreward.protocol.parse_gpt_grade`.
3. **Report**: :func:`unifiedreward.eval.metrics.videoqa_judge_summary`: Accuracy = yes / (yes + no) and Score =
   mean score, both over the parsed grades as upstream, with the unparsed count and the accuracy counting them as
   "no" beside them; ``results.json``, ``results.md`` (beside the UnifiedReward paper's DPO table) and
   ``results.png``.

Both stages append to JSONL files (``answers.jsonl``, ``grades.jsonl``) chunk by chunk and resume **by id** (upstream
resumed by count, which misaligns after a failure). Videos that cannot be read, or policy / judge requests that
fail, are recorded with a ``status`` and a ``reason``, left out of the metrics, counted, and tried again on the next
run. Upstream dropped unparsed grades silently; here they are graded ``invalid`` and reported.

Data, as upstream ships it (``--data_dir``, videos in ``--video_dir``, default ``<data_dir>/videos``):

* MSRVTT-QA: ``test_qa.json``: ``[{"video_id", "question", "answer", "id"}]``; video ``video{video_id}.mp4``.
* MSVD-QA: ``test_qa.json`` (same keys, 13,157 records) and ``youtube_mapping.txt`` (lines ``<clip name> vid<N>``);
  video ``<clip name>.avi`` (upstream strips a leading ``-`` from the clip name; both spellings are tried).
* TGIF-QA: ``test_q.json`` (``question``, ``video_name``, ``question_id``) with ``test_a.json`` (``answer``,
  ``type``, ``question_id``), joined by ``question_id`` (by position where a file has none); video
  ``<video_name>.mp4``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unifiedreward.chat import ChatPrompt
from unifiedreward.errors import MediaError, UnifiedRewardError
from unifiedreward.eval.runner import DataError, check_settings, write_json_atomic, write_jsonl_atomic
from unifiedreward.judge.cli import DTYPES, FAMILIES, OutputError, id_key, read_output, to_jsonable

logger = logging.getLogger(__name__)

__all__ = [
    "DATASETS",
    "QAItem",
    "VideoQAArguments",
    "answer_prompt",
    "grade_prompt",
    "load_qa_items",
    "main",
    "run_videoqa",
]

DATASETS: tuple[str, ...] = ("msrvtt", "msvd", "tgif")
STAGES: tuple[str, ...] = ("all", "answer", "grade")
ANSWERS = "answers.jsonl"
GRADES = "grades.jsonl"
DEFAULT_JUDGE_MODEL = "gpt-3.5-turbo-1106"
DEFAULT_JUDGE_URL = "https://api.openai.com/v1"
SYSTEM_TEMPLATE = "T-GPT-JUDGE-SYSTEM"
USER_TEMPLATE = "T-GPT-JUDGE-USER"

#: UnifiedReward paper, DPO comparison (LLaVA-Video-7B policy; judge gpt-3.5-turbo-1106): (accuracy %, score).
PUBLISHED: dict[str, tuple[tuple[str, float, float], ...]] = {
    "msrvtt": (("LLaVA-Video-7B", 52.8, 3.24), ("w/ Houd-DPO", 56.8, 3.34), ("w/ TPO", 55.0, 3.25),
               ("w/ UnifiedReward DPO", 65.0, 3.45)),
    "msvd": (("LLaVA-Video-7B", 69.7, 3.90), ("w/ Houd-DPO", 72.8, 3.97), ("w/ TPO", 72.6, 3.93),
             ("w/ UnifiedReward DPO", 78.3, 4.01)),
    "tgif": (("LLaVA-Video-7B", 51.9, 3.37), ("w/ Houd-DPO", 54.9, 3.45), ("w/ TPO", 53.7, 3.40),
             ("w/ UnifiedReward DPO", 59.7, 3.51)),
}  # fmt: skip
PUBLISHED_SOURCE = "UnifiedReward paper, DPO comparison (32 frames, judge gpt-3.5-turbo-1106, parsed grades only)"
TITLES = {"msrvtt": "MSRVTT-QA", "msvd": "MSVD-QA", "tgif": "TGIF-QA"}

_ANSWER_KEYS = ("dataset", "data_files", "policy_backend", "model", "family", "num_frames", "video_fps",
                "max_pixels", "max_new_tokens")  # fmt: skip
_GRADE_KEYS = ("judge_model", "judge_base_url", "judge_max_tokens", "system_template", "user_template")


@dataclass
class VideoQAArguments:
    """Flags of the video-QA evaluation (every field is a ``--flag``; ``--config file.yaml`` sets defaults)."""

    dataset: str = field(metadata={"help": "Which benchmark's file layout: msrvtt, msvd or tgif.",
                                   "choices": list(DATASETS)})  # fmt: skip
    data_dir: str = field(
        metadata={"help": "Folder with the question files as upstream ships them (module docstring)."}
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


# -------------------------------------------------------------------------------------------------------- data
@dataclass(frozen=True)
class QAItem:
    """One question: ``id``, ``question``, the reference ``answer`` and the video file."""

    id: str
    question: str
    answer: str
    video: Path


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise DataError(f"{path} does not exist (see docs/evaluation.md for the video-QA layout)")
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except ValueError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from exc


def _records(path: Path, keys: Sequence[str]) -> list[dict[str, Any]]:
    data = _read_json(path)
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a list of records")
    for number, record in enumerate(data):
        missing = [k for k in keys if not isinstance(record, dict) or k not in record]
        if missing:
            raise DataError(f"{path}: record {number} lacks {missing}")
    return data


def _msvd_mapping(path: Path) -> dict[str, str]:
    """``youtube_mapping.txt``: ``<clip name> vid<N>`` per line -> ``{"<N>": "<clip name>"}``."""
    if not path.is_file():
        raise DataError(f"{path} does not exist (MSVD-QA maps video ids to clip names with it)")
    mapping = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[1].startswith("vid"):
            raise DataError(f"{path}:{number}: expected '<clip name> vid<N>', got {line!r}")
        mapping[parts[1][3:]] = parts[0]
    return mapping


def _msvd_video(video_dir: Path, clip: str) -> Path:
    for name in (clip, clip.lstrip("-")):
        candidate = video_dir / f"{name}.avi"
        if candidate.exists():
            return candidate
    return video_dir / f"{clip}.avi"  # missing: reported when loaded


def load_qa_items(
    dataset: str, data_dir: str | os.PathLike, video_dir: str | os.PathLike | None = None
) -> list[QAItem]:
    """The questions of ``dataset`` in file order (see the module docstring for the layouts).

    Raises:
        DataError: a missing or malformed file, an MSVD video id without a clip name, TGIF question and answer files
            that do not line up, or a duplicate id.
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    root = Path(data_dir)
    videos = Path(video_dir) if video_dir else root / "videos"
    items: list[QAItem] = []
    if dataset == "msrvtt":
        for r in _records(root / "test_qa.json", ("video_id", "question", "answer", "id")):
            items.append(
                QAItem(str(r["id"]), str(r["question"]), str(r["answer"]), videos / f"video{r['video_id']}.mp4")
            )
    elif dataset == "msvd":
        mapping = _msvd_mapping(root / "youtube_mapping.txt")
        for r in _records(root / "test_qa.json", ("video_id", "question", "answer", "id")):
            clip = mapping.get(str(r["video_id"]))
            if clip is None:
                raise DataError(f"{root / 'youtube_mapping.txt'}: no clip for video id vid{r['video_id']}")
            items.append(QAItem(str(r["id"]), str(r["question"]), str(r["answer"]), _msvd_video(videos, clip)))
    else:
        questions = _records(root / "test_q.json", ("question", "video_name"))
        answers = _records(root / "test_a.json", ("answer",))
        if all("question_id" in q for q in questions) and all("question_id" in a for a in answers):
            by_id = {str(a["question_id"]): a for a in answers}
            missing = [q["question_id"] for q in questions if str(q["question_id"]) not in by_id]
            if missing:
                raise DataError(f"{root / 'test_a.json'}: no answer for question_id {missing[:5]}")
            pairs = [(q, by_id[str(q["question_id"])]) for q in questions]
        elif len(questions) == len(answers):
            pairs = list(zip(questions, answers, strict=True))
        else:
            raise DataError(f"{root}: {len(questions)} questions but {len(answers)} answers and no question_id")
        for k, (q, a) in enumerate(pairs):
            qid = str(q.get("question_id", a.get("question_id", k)))
            items.append(QAItem(qid, str(q["question"]), str(a["answer"]), videos / f"{q['video_name']}.mp4"))
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise DataError(f"{dataset}: question id {item.id!r} occurs twice")
        seen.add(item.id)
    return items


# ----------------------------------------------------------------------------------------------------- prompts
def answer_prompt(question: str, video: Any, family: str) -> ChatPrompt:
    """The policy's prompt: the video and the bare question (upstream adds no instruction).

    ``family="qwen"``: one user turn with a video part then the question. ``family="llava"``: the frames as images
    (``"<image>\\n"`` per frame, then the question) after the ``You are a helpful assistant.`` system turn, as
    upstream's LLaVA-Video scripts.
    """
    if family == "llava":
        from PIL import Image

        from unifiedreward.protocol import LLAVA_SYSTEM_PROMPT

        frames = [Image.fromarray(frame) for frame in getattr(video, "frames", video)]
        messages = [
            {"role": "system", "content": [{"type": "text", "text": LLAVA_SYSTEM_PROMPT}]},
            {"role": "user", "content": [{"type": "text", "text": "<image>\n" * len(frames) + question}]},
        ]
        return ChatPrompt(messages=messages, images=frames, family="llava", meta={"task": "video_qa"})
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}]
    return ChatPrompt(messages=messages, videos=[video], family="qwen", meta={"task": "video_qa"})


def grade_prompt(question: str, answer: str, pred: str) -> ChatPrompt:
    """The judge's prompt: ``T-GPT-JUDGE-SYSTEM`` as the system turn, ``T-GPT-JUDGE-USER`` filled as the user turn."""
    from unifiedreward.protocol import fill_template, get_template

    messages = [
        {"role": "system", "content": get_template(SYSTEM_TEMPLATE).text},
        {"role": "user", "content": fill_template(USER_TEMPLATE, question=question, answer=answer, pred=pred)},
    ]
    return ChatPrompt(messages=messages, family="qwen", meta={"template_id": USER_TEMPLATE})


# ------------------------------------------------------------------------------------------------------ stages
def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _append(handle: Any, records: Sequence[dict[str, Any]]) -> None:
    handle.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    handle.flush()
    os.fsync(handle.fileno())


def _done(path: Path, wanted: set[str]) -> dict[str, dict[str, Any]]:
    """Valid records already in ``path`` by id; failed ones are dropped (tried again)."""
    records = read_output(path, repair=True)
    done: dict[str, dict[str, Any]] = {}
    for record in records:
        key = id_key(record["id"])
        if key not in wanted:
            raise OutputError(f"{path} holds id {record['id']!r}, which is not among the questions (use --overwrite)")
        if key in done:
            raise OutputError(f"{path} holds id {record['id']!r} twice")
        if record.get("status") in ("valid", "invalid"):
            done[key] = record
    if len(done) != len(records):
        logger.info("%s: %d failed record(s) will be tried again", path, len(records) - len(done))
        write_jsonl_atomic(path, list(done.values()))
    return done


def _load_video(item: QAItem, args: VideoQAArguments) -> tuple[Any, str | None]:
    from unifiedreward.media import load_video

    try:
        return load_video(item.video, num_frames=args.num_frames, fps=args.video_fps, max_pixels=args.max_pixels), None
    except MediaError as exc:
        return None, f"media error: {exc}"


def _policy(args: VideoQAArguments) -> tuple[Any, str]:
    """The policy backend and its prompt family."""
    if args.policy_backend == "openai":
        from unifiedreward.judge.openai_backend import OpenAIBackend

        backend = OpenAIBackend(args.policy_base_url, args.model, api_key=args.policy_api_key)
        return backend, args.family or "qwen"
    from unifiedreward.judge.hf_backend import TransformersBackend
    from unifiedreward.modeling import model_family

    logger.info("loading the policy %s", args.model)
    backend = TransformersBackend.from_pretrained(
        args.model, batch_size=args.batch_size, dtype=args.dtype, device_map=args.device_map,
        attn_implementation=args.attn_implementation,
    )  # fmt: skip
    return backend, args.family or model_family(backend.model)


def _answer(items: Sequence[QAItem], args: VideoQAArguments, path: Path, policy: Any, family: str) -> None:
    from tqdm.auto import tqdm

    from unifiedreward.judge.base import GenerationConfig

    config = GenerationConfig(max_new_tokens=args.max_new_tokens)
    bar = tqdm(total=len(items), desc="answering", unit="q", disable=not args.progress, file=sys.stderr)
    with ThreadPoolExecutor(max_workers=max(1, args.num_workers)) as pool, path.open("a", encoding="utf-8") as handle:
        for chunk in _chunks(items, args.chunk_size):
            loaded = list(pool.map(lambda item: _load_video(item, args), chunk))
            live = [k for k, (video, _) in enumerate(loaded) if video is not None]
            prompts = [answer_prompt(chunk[k].question, loaded[k][0], family) for k in live]
            generations = dict(zip(live, policy.generate(prompts, config) if prompts else [], strict=True))
            records = []
            for k, item in enumerate(chunk):
                record = {"id": item.id, "video": str(item.video), "question": item.question, "answer": item.answer}
                generation = generations.get(k)
                if generation is None:
                    record.update(pred=None, status="media_error", reason=loaded[k][1])
                    logger.warning("question %s: %s", item.id, loaded[k][1])
                elif not generation.ok:
                    record.update(pred=None, status="error", reason=f"policy error: {generation.error}")
                else:
                    record.update(pred=generation.text.strip(), status="valid", reason=None)
                records.append(record)
            _append(handle, records)
            bar.update(len(chunk))
    bar.close()


def _grade(answers: Sequence[dict[str, Any]], args: VideoQAArguments, path: Path, grader: Any) -> None:
    from tqdm.auto import tqdm

    from unifiedreward.judge.base import GenerationConfig
    from unifiedreward.protocol import parse_gpt_grade

    config = GenerationConfig(max_new_tokens=args.judge_max_tokens)
    bar = tqdm(total=len(answers), desc="grading", unit="q", disable=not args.progress, file=sys.stderr)
    with path.open("a", encoding="utf-8") as handle:
        for chunk in _chunks(answers, args.chunk_size):
            prompts = [grade_prompt(a["question"], a["answer"], a["pred"]) for a in chunk]
            records = []
            for answer, generation in zip(chunk, grader.generate(prompts, config), strict=True):
                record = {k: answer[k] for k in ("id", "question", "answer", "pred")}
                if not generation.ok:
                    record.update(correct=None, score=None, status="error", reason=f"judge error: {generation.error}",
                                  raw=None)  # fmt: skip
                else:
                    grade = parse_gpt_grade(generation.text)
                    record.update(correct=grade.correct, score=grade.score,
                                  status="valid" if grade.valid else "invalid", reason=grade.reason, raw=grade.raw)  # fmt: skip
                records.append(record)
            _append(handle, records)
            bar.update(len(chunk))
    bar.close()


def _judge_settings(args: VideoQAArguments) -> dict[str, Any]:
    return {
        "judge_base_url": args.judge_base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_JUDGE_URL,
        "judge_model": args.judge_model or os.environ.get("OPENAI_MODEL") or DEFAULT_JUDGE_MODEL,
        "judge_max_tokens": args.judge_max_tokens,
        "judge_temperature": 0.0,
        "system_template": SYSTEM_TEMPLATE,
        "user_template": USER_TEMPLATE,
    }


def run_videoqa(args: VideoQAArguments, *, policy: Any = None, grader: Any = None) -> dict[str, Any] | None:
    """Answer, grade and report (per ``--stage``).

    Args:
        args: the flags.
        policy: a ready backend answering the questions instead of one built from the flags (its family is
            ``--family``, else ``"qwen"``).
        grader: a ready backend grading instead of an :class:`~unifiedreward.judge.openai_backend.OpenAIBackend`
            built from the judge flags.

    Returns:
        The results (``results.json``) after grading; ``None`` after ``--stage answer``.

    Raises:
        DataError: missing or malformed question files.
        OutputError: existing outputs from another run.
        ValueError: invalid flags.
    """
    if args.stage not in STAGES:
        raise ValueError(f"--stage must be one of {STAGES}")
    if args.chunk_size < 1 or args.num_frames < 1 or (args.limit is not None and args.limit < 1):
        raise ValueError("--chunk_size, --num_frames and --limit must be >= 1")
    if args.stage != "grade" and policy is None and not args.model:
        raise ValueError("--model (the policy) is required to answer questions")
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    answers_path, grades_path = output_dir / ANSWERS, output_dir / GRADES
    if args.overwrite:
        for stale in (
            answers_path,
            grades_path,
            output_dir / "answer_settings.json",
            output_dir / "grade_settings.json",
        ):
            if stale.exists():
                stale.unlink()
    items = load_qa_items(args.dataset, args.data_dir, args.video_dir)
    if args.limit is not None:
        items = items[: args.limit]
    wanted = {item.id for item in items}
    data_dir = Path(args.data_dir).resolve()
    answer_settings = {
        "dataset": args.dataset, "data_files": str(data_dir), "policy_backend": args.policy_backend,
        "model": args.model or type(policy).__name__, "family": args.family, "num_frames": args.num_frames,
        "video_fps": args.video_fps, "max_pixels": args.max_pixels, "max_new_tokens": args.max_new_tokens,
        "temperature": 0.0,
    }  # fmt: skip

    if args.stage in ("all", "answer"):
        check_settings(output_dir, answer_settings, _ANSWER_KEYS, "answer_settings.json")
        done = _done(answers_path, wanted)
        pending = [item for item in items if item.id not in done]
        logger.info("%s: %d question(s), %d answered, %d to answer", args.dataset, len(items), len(done), len(pending))
        if pending:
            family = args.family or "qwen"
            if policy is None:
                policy, family = _policy(args)
            _answer(pending, args, answers_path, policy, family)
        if args.stage == "answer":
            return None

    answer_records = {id_key(r["id"]): r for r in read_output(answers_path)}
    unanswered = [item.id for item in items if item.id not in answer_records]
    if unanswered:
        raise OutputError(f"{answers_path}: {len(unanswered)} question(s) have no answer yet (run --stage answer)")
    answered = [answer_records[item.id] for item in items if answer_records[item.id].get("status") == "valid"]
    judge_settings = _judge_settings(args)
    check_settings(output_dir, judge_settings, _GRADE_KEYS, "grade_settings.json")
    done = _done(grades_path, {a["id"] for a in answered})
    pending_grades = [a for a in answered if a["id"] not in done]
    logger.info("grading: %d answer(s), %d graded, %d to grade", len(answered), len(done), len(pending_grades))
    if pending_grades:
        if grader is None:
            from unifiedreward.judge.openai_backend import OpenAIBackend

            grader = OpenAIBackend(
                judge_settings["judge_base_url"], judge_settings["judge_model"],
                api_key=args.judge_api_key or os.environ.get("OPENAI_API_KEY"),
                max_concurrency=args.judge_max_concurrency, timeout=args.judge_timeout,
                max_retries=args.judge_max_retries,
            )  # fmt: skip
        _grade(pending_grades, args, grades_path, grader)
    grades = {id_key(r["id"]): r for r in read_output(grades_path)}
    return _report(args, items, answer_records, grades, answer_settings, judge_settings)


# ------------------------------------------------------------------------------------------------------ report
def _report(
    args: VideoQAArguments, items: Sequence[QAItem], answers: dict[str, dict[str, Any]],
    grades: dict[str, dict[str, Any]], answer_settings: dict[str, Any], judge_settings: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    from unifiedreward.eval.metrics import videoqa_judge_summary

    graded = [grades[item.id] for item in items if item.id in grades]
    summary = videoqa_judge_summary(
        [(g["correct"], g["score"]) if g.get("status") == "valid" else None for g in graded],
        truncate_scores=args.truncate_scores,
    )
    answer_status = Counter(str(answers[item.id].get("status")) for item in items)
    grade_status = Counter(str(g.get("status")) for g in graded)
    metrics = to_jsonable(summary)
    metrics["accuracy_percent"] = None if math.isnan(summary.accuracy) else round(100 * summary.accuracy, 2)
    metrics["accuracy_invalid_as_wrong_percent"] = (
        None if math.isnan(summary.accuracy_invalid_as_wrong) else round(100 * summary.accuracy_invalid_as_wrong, 2)
    )
    results = {
        "benchmark": args.dataset,
        "title": TITLES[args.dataset],
        "settings": {
            **answer_settings,
            **judge_settings,
            "truncate_scores": args.truncate_scores,
            "limit": args.limit,
        },
        "counts": {
            "questions": len(items),
            "answered": answer_status.get("valid", 0),
            "media_errors": answer_status.get("media_error", 0),
            "policy_errors": answer_status.get("error", 0),
            "graded": len(graded),
            "grade_valid": grade_status.get("valid", 0),
            "grade_invalid": grade_status.get("invalid", 0),
            "judge_errors": grade_status.get("error", 0),
        },
        "metrics": metrics,
        "metric_definitions": {
            "accuracy": "yes / (yes + no) over the parsed grades (upstream 'Accuracy'; eval_gpt.py).",
            "mean_score": "mean judge score (0-5) over the parsed grades (upstream 'Average score'); floats kept "
            "unless --truncate_scores (upstream's int()).",
            "accuracy_invalid_as_wrong": "yes / all graded answers: unparsed grades and judge errors counted as 'no'.",
            "n_invalid": "graded answers whose grade could not be parsed (upstream dropped them silently) or whose "
            "judge request failed; questions whose video could not be read are not graded (media_errors).",
        },
        "published": [
            {"model": m, "accuracy": a, "score": s, "source": PUBLISHED_SOURCE} for m, a, s in PUBLISHED[args.dataset]
        ],
    }
    output_dir = Path(args.output_dir)
    write_json_atomic(output_dir / "results.json", results)
    (output_dir / "results.md").write_text(_markdown(results), encoding="utf-8")
    if args.plot:
        _plot(results, output_dir / "results.png")
    return results


def _fmt(value: Any, digits: int = 2) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _markdown(results: dict[str, Any]) -> str:
    s, c, m = results["settings"], results["counts"], results["metrics"]
    lines = [
        f"# {results['title']}: results",
        "",
        f"Policy `{s['model']}` ({s['policy_backend']}, {s['num_frames']} frames, max {s['max_new_tokens']} new "
        f"tokens, greedy); judge `{s['judge_model']}` at {s['judge_base_url']} with {s['system_template']} / "
        f"{s['user_template']}" + (", scores truncated as upstream" if s["truncate_scores"] else "") + ".",
        "",
        (
            f"Questions {c['questions']}: {c['answered']} answered ({c['media_errors']} unreadable videos, "
            f"{c['policy_errors']} policy errors); {c['graded']} graded: {c['grade_valid']} parsed, "
            f"{c['grade_invalid']} unparsed, {c['judge_errors']} judge errors."
        ),
        "",
        "| model | accuracy (%) | score (0-5) | accuracy, unparsed = no (%) | source |",
        "|---|---:|---:|---:|---|",
        (
            f"| **ours: {Path(str(s['model'])).name}** | {_fmt(m['accuracy_percent'])} | {_fmt(m['mean_score'])} | "
            f"{_fmt(m['accuracy_invalid_as_wrong_percent'])} | this run |"
        ),
    ]
    lines += [f"| {p['model']} | {_fmt(p['accuracy'], 1)} | {_fmt(p['score'])} | – | {p['source']} |"
              for p in results["published"]]  # fmt: skip
    lines += ["", "## Metric definitions", ""]
    lines += [f"* **{k}**: {v}" for k, v in results["metric_definitions"].items()]
    return "\n".join(lines) + "\n"


def _plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    m = results["metrics"]
    names = [f"ours: {Path(str(results['settings']['model'])).name}"] + [p["model"] for p in results["published"]]
    accuracy = [m["accuracy_percent"]] + [p["accuracy"] for p in results["published"]]
    score = [m["mean_score"]] + [p["score"] for p in results["published"]]
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.45 * len(names) + 1.6))
    for ax, values, label, limit in ((axes[0], accuracy, "accuracy (%)", 100), (axes[1], score, "score (0-5)", 5)):
        clean = [0.0 if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values]
        bars = ax.barh(range(len(names)), clean, color=["C1"] + ["C0"] * (len(names) - 1))
        bars[0].set_edgecolor("black")
        for y, v in enumerate(values):
            ax.text(limit * 0.01, y, _fmt(v), va="center", fontsize=8)
        ax.set_yticks(range(len(names)))
        ax.set_yticklabels(names if ax is axes[0] else [], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, limit)
        ax.set_xlabel(label)
    fig.suptitle(f"{results['title']} (first row: this run)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------------------- CLI
def main(argv: Sequence[str] | None = None, *, description: str | None = None) -> int:
    """Parse flags and run; returns the exit status (1 on data, output, flag or backend errors)."""
    from unifiedreward.args import parse_args

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    (args,) = parse_args(
        [VideoQAArguments], argv, prog="eval_video_qa", description=description or __doc__.split("\n\n")[0]
    )
    try:
        results = run_videoqa(args)
    except (UnifiedRewardError, ValueError) as exc:
        print(f"eval_video_qa: error: {exc}", file=sys.stderr)
        return 1
    if results is not None:
        m, c = results["metrics"], results["counts"]
        print(f"{results['title']}: accuracy {_fmt(m['accuracy_percent'])}%, score {_fmt(m['mean_score'])} over "
              f"{m['n_valid']} parsed grades ({c['grade_invalid']} unparsed, {c['media_errors']} unreadable videos)")  # fmt: skip
        print(f"results: {Path(args.output_dir) / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
