"""Video QA, answering and grading: the policy's and the judge's prompts, the two resumable stages, the CLI.

1. **Answer** (``--stage answer``): each question is asked about its video with no instruction around it (a chat
   prompt holding the video and the question; LLaVA checkpoints get the frames as images, ``"<image>\\n" * frames +
   question``, as upstream). The policy runs in this process
   (:class:`~unifiedreward.judge.hf_backend.TransformersBackend`) or behind an OpenAI-compatible server
   (``--policy_backend openai``). Greedy decoding.
2. **Grade** (``--stage grade``): a judge behind any OpenAI-compatible endpoint (``--judge_base_url``,
   ``--judge_model``, ``--judge_api_key``, or ``$OPENAI_BASE_URL`` / ``$OPENAI_MODEL`` / ``$OPENAI_API_KEY``;
   upstream used ``gpt-3.5-turbo-1106``) receives ``T-GPT-JUDGE-SYSTEM`` / ``T-GPT-JUDGE-USER`` and answers
   ``{'pred': 'yes'|'no', 'score': 0-5}``, read by :func:`unifiedreward.protocol.parse_gpt_grade`.

Both stages append to JSONL files (``answers.jsonl``, ``grades.jsonl``) chunk by chunk and resume **by id**. Videos
that cannot be read, or policy / judge requests that fail, are recorded with a ``status`` and a ``reason`` and tried
again on the next run; unparsed grades are ``invalid`` and reported (:mod:`~unifiedreward.eval.videoqa.report`).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from unifiedreward.chat import ChatPrompt
from unifiedreward.errors import DataError, MediaError, UnifiedRewardError
from unifiedreward.eval.report import fmt
from unifiedreward.eval.videoqa.arguments import DEFAULT_JUDGE_MODEL, DEFAULT_JUDGE_URL, STAGES, VideoQAArguments
from unifiedreward.eval.videoqa.data import QAItem, load_qa_items
from unifiedreward.eval.videoqa.report import write_report
from unifiedreward.io import check_settings, id_key, read_jsonl, run_resumable

logger = logging.getLogger(__name__)

__all__ = ["answer_prompt", "grade_prompt", "main", "run_videoqa"]

DESCRIPTION = (
    "Video question answering (MSRVTT-QA, MSVD-QA, TGIF-QA): answer with a policy VLM, grade with an LLM judge."
)
ANSWERS = "answers.jsonl"
GRADES = "grades.jsonl"
ANSWER_SETTINGS = "answer_settings.json"
GRADE_SETTINGS = "grade_settings.json"
SYSTEM_TEMPLATE = "T-GPT-JUDGE-SYSTEM"
USER_TEMPLATE = "T-GPT-JUDGE-USER"

_ANSWER_KEYS = ("dataset", "data_files", "policy_backend", "model", "family", "num_frames", "video_fps",
                "max_pixels", "max_new_tokens")  # fmt: skip
_GRADE_KEYS = ("judge_model", "judge_base_url", "judge_max_tokens", "system_template", "user_template")


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
def _load_video(item: QAItem, args: VideoQAArguments) -> tuple[Any, str | None]:
    """``(video, None)``, or ``(None, "media error: ...")`` when the question's video cannot be read."""
    from unifiedreward.media import resolve_media

    try:
        video = resolve_media(
            item.video, "video", num_frames=args.num_frames, fps=args.video_fps, max_pixels=args.max_pixels
        )
    except MediaError as exc:
        return None, f"media error: {exc}"
    return video, None


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


def _answer_chunk(
    chunk: Sequence[QAItem], loaded: Sequence[tuple[Any, str | None]], policy: Any, family: str, config: Any
) -> list[dict[str, Any]]:
    """The answer records of one chunk (``loaded``: :func:`_load_video` of each item)."""
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
    return records


def _grade_chunk(chunk: Sequence[dict[str, Any]], grader: Any, config: Any) -> list[dict[str, Any]]:
    """The grade records of one chunk of answer records."""
    from unifiedreward.protocol import parse_gpt_grade

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
    return records


def _is_failed(record: dict[str, Any]) -> bool:
    """A media, policy or judge error: tried again on the next run (unparsed grades are results, not failures)."""
    return record.get("status") not in ("valid", "invalid")


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
        DataError: existing outputs from another run (:class:`~unifiedreward.errors.SettingsError`: other settings).
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
            output_dir / ANSWER_SETTINGS,
            output_dir / GRADE_SETTINGS,
        ):
            if stale.exists():
                stale.unlink()
    items = load_qa_items(args.dataset, args.data_dir, args.video_dir)
    if args.limit is not None:
        items = items[: args.limit]
    data_dir = Path(args.data_dir).resolve()
    answer_settings = {
        "dataset": args.dataset, "data_files": str(data_dir), "policy_backend": args.policy_backend,
        "model": args.model or type(policy).__name__, "family": args.family, "num_frames": args.num_frames,
        "video_fps": args.video_fps, "max_pixels": args.max_pixels, "max_new_tokens": args.max_new_tokens,
        "temperature": 0.0,
    }  # fmt: skip

    from unifiedreward.judge.base import GenerationConfig

    if args.stage in ("all", "answer"):
        check_settings(output_dir / ANSWER_SETTINGS, answer_settings, fresh=False, keys=_ANSWER_KEYS)
        family = args.family or "qwen"

        def load_policy(pending: Sequence[QAItem]) -> None:  # only when something is left to answer
            nonlocal policy, family
            if policy is None:
                policy, family = _policy(args)

        answer_config = GenerationConfig(max_new_tokens=args.max_new_tokens)
        run_resumable(
            items,
            key=lambda item: id_key(item.id),
            output=answers_path,
            process=lambda chunk, loaded: _answer_chunk(chunk, loaded, policy, family, answer_config),
            load=lambda item: _load_video(item, args),
            setup=load_policy,
            chunk_size=args.chunk_size,
            num_workers=max(1, args.num_workers),
            retry_failed=True,
            is_failed=_is_failed,
            desc="answering",
            progress=args.progress,
        )
        if args.stage == "answer":
            return None

    answer_records = {id_key(r["id"]): r for r in read_jsonl(answers_path)}
    unanswered = [item.id for item in items if item.id not in answer_records]
    if unanswered:
        raise DataError(f"{len(unanswered)} question(s) have no answer yet (run --stage answer)", path=answers_path)
    answered = [answer_records[item.id] for item in items if answer_records[item.id].get("status") == "valid"]
    judge_settings = _judge_settings(args)
    check_settings(output_dir / GRADE_SETTINGS, judge_settings, fresh=False, keys=_GRADE_KEYS)

    def load_grader(pending: Sequence[dict[str, Any]]) -> None:  # only when something is left to grade
        nonlocal grader
        if grader is None:
            from unifiedreward.judge.openai_backend import OpenAIBackend

            grader = OpenAIBackend(
                judge_settings["judge_base_url"], judge_settings["judge_model"],
                api_key=args.judge_api_key or os.environ.get("OPENAI_API_KEY"),
                max_concurrency=args.judge_max_concurrency, timeout=args.judge_timeout,
                max_retries=args.judge_max_retries,
            )  # fmt: skip

    grade_config = GenerationConfig(max_new_tokens=args.judge_max_tokens)
    run_resumable(
        answered,
        key=lambda answer: id_key(answer["id"]),
        output=grades_path,
        process=lambda chunk, _: _grade_chunk(chunk, grader, grade_config),
        setup=load_grader,
        chunk_size=args.chunk_size,
        retry_failed=True,
        is_failed=_is_failed,
        desc="grading",
        progress=args.progress,
    )
    grades = {id_key(r["id"]): r for r in read_jsonl(grades_path)}
    return write_report(args, items, answer_records, grades, answer_settings, judge_settings)


# ---------------------------------------------------------------------------------------------------------- CLI
def main(argv: Sequence[str] | None = None, *, description: str | None = None) -> int:
    """Parse flags and run; returns the exit status (1 on data, output, flag or backend errors)."""
    from unifiedreward.args import parse_args

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    (args,) = parse_args([VideoQAArguments], argv, prog="eval_video_qa", description=description or DESCRIPTION)
    try:
        results = run_videoqa(args)
    except (UnifiedRewardError, ValueError) as exc:
        print(f"eval_video_qa: error: {exc}", file=sys.stderr)
        return 1
    if results is not None:
        m, c = results["metrics"], results["counts"]
        print(f"{results['title']}: accuracy {fmt(m['accuracy_percent'])}%, score {fmt(m['mean_score'])} over "
              f"{m['n_valid']} parsed grades ({c['grade_invalid']} unparsed, {c['media_errors']} unreadable videos)")  # fmt: skip
        print(f"results: {Path(args.output_dir) / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
