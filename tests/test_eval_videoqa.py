"""Video QA evaluation: loaders of the three upstream layouts, policy answering with the tiny model, grading against
the local OpenAI-compatible stub server (scripted grades, one malformed), resume by id, and the report.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from openai_stub import Fail, StubOpenAIServer, request_text

from unifiedreward.errors import DataError, UnifiedRewardError
from unifiedreward.eval.videoqa import VideoQAArguments, answer_prompt, grade_prompt, load_qa_items, run_videoqa
from unifiedreward.judge.base import Generation
from unifiedreward.protocol import get_template
from unifiedreward.testing.media import make_frames, write_video

pytestmark = pytest.mark.smoke

ROOT = Path(__file__).resolve().parents[1]

# Scripted grades per question. Parsed: q0 yes 4, q1 no 1, q3 yes 4.8; q2 is malformed (invalid).
# accuracy = yes / (yes + no) = 2/3; mean score = (4 + 1 + 4.8) / 3 = 3.2667 (truncated: (4 + 1 + 4) / 3 = 3.0);
# accuracy with unparsed counted as "no" = 2/4.
GRADES = {
    "what is q0?": "{'pred': 'yes', 'score': 4}",
    "what is q1?": "{'pred': 'no', 'score': 1}",
    "what is q2?": "I would say the prediction is right.",
    "what is q3?": "{'pred': 'yes', 'score': 4.8}",
}


def grade_reply(body, index):
    text = request_text(body)
    for question, grade in GRADES.items():
        if f"Question: {question}" in text:
            return grade
    return "{'pred': 'no', 'score': 0}"


def _video(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, make_frames(4, 32, 32, seed=seed), fps=4)


@pytest.fixture(scope="module")
def msvd(tmp_path_factory) -> Path:
    """MSVD-QA as upstream ships it: test_qa.json, youtube_mapping.txt, videos/<clip>.avi."""
    root = tmp_path_factory.mktemp("msvd")
    clips = ["-4wsuPCjDBc_5_15", "abcDEF_1_5", "xyz_2_9"]
    (root / "youtube_mapping.txt").write_text("".join(f"{c} vid{k + 1}\n" for k, c in enumerate(clips)))
    _video(root / "videos" / "4wsuPCjDBc_5_15.avi", 1)  # upstream strips the leading "-" from the clip name
    _video(root / "videos" / "abcDEF_1_5.avi", 2)
    _video(root / "videos" / "xyz_2_9.avi", 3)
    rows = [{"answer": f"answer {k}", "id": 100 + k, "question": f"what is q{k}?", "video_id": [1, 2, 3, 1][k]}
            for k in range(4)]  # fmt: skip
    (root / "test_qa.json").write_text(json.dumps(rows))
    return root


def qa_args(data: Path, out: Path, **overrides) -> VideoQAArguments:
    values = {"dataset": "msvd", "num_frames": 2, "progress": False, "plot": False, "chunk_size": 2,
              "max_new_tokens": 4, "judge_max_retries": 0, "judge_max_concurrency": 1}  # fmt: skip
    values.update(overrides)
    return VideoQAArguments(data_dir=str(data), output_dir=str(out), **values)


class FakePolicy:
    """Answers "it is q<k>" for question q<k>; raises on call ``fail_on_call`` (a killed run)."""

    def __init__(self, fail_on_call: int | None = None):
        self.fail_on_call, self.calls, self.prompts = fail_on_call, 0, []

    def generate(self, prompts, config):
        self.calls += 1
        if self.fail_on_call is not None and self.calls >= self.fail_on_call:
            raise RuntimeError("simulated kill")
        self.prompts.extend(prompts)
        return [Generation("it is " + p.text().split()[-1].rstrip("?")) for p in prompts]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_loaders_of_the_three_layouts(msvd, tmp_path):
    items = load_qa_items("msvd", msvd)
    assert [(i.id, i.question, i.answer) for i in items[:2]] == [("100", "what is q0?", "answer 0"),
                                                                 ("101", "what is q1?", "answer 1")]  # fmt: skip
    assert items[0].video.name == "4wsuPCjDBc_5_15.avi" and items[0].video.exists()
    # MSRVTT-QA: video<video_id>.mp4
    msrvtt = tmp_path / "msrvtt"
    msrvtt.mkdir()
    (msrvtt / "test_qa.json").write_text(
        json.dumps([{"video_id": 7010, "question": "who?", "answer": "man", "id": 3}])
    )
    (item,) = load_qa_items("msrvtt", msrvtt)
    assert (item.id, item.video) == ("3", msrvtt / "videos" / "video7010.mp4")
    # TGIF-QA: questions and answers joined by question_id, whatever their order
    tgif = tmp_path / "tgif"
    tgif.mkdir()
    (tgif / "test_q.json").write_text(json.dumps([
        {"question": "what does the bird do?", "video_name": "tumblr_a", "question_id": "qa"},
        {"question": "how many?", "video_name": "tumblr_b", "question_id": "qb"},
    ]))  # fmt: skip
    (tgif / "test_a.json").write_text(json.dumps([{"answer": "2", "type": 1, "question_id": "qb"},
                                                  {"answer": "flap wings", "type": 3, "question_id": "qa"}]))  # fmt: skip
    items = load_qa_items("tgif", tgif, video_dir=tmp_path / "gifs")
    assert [(i.id, i.answer, i.video.name) for i in items] == [("qa", "flap wings", "tumblr_a.mp4"),
                                                               ("qb", "2", "tumblr_b.mp4")]  # fmt: skip
    (tgif / "test_a.json").write_text(
        json.dumps([{"answer": "2", "question_id": "qz"}, {"answer": "x", "question_id": "qa"}])
    )
    with pytest.raises(DataError, match="no answer for question_id"):
        load_qa_items("tgif", tgif)
    with pytest.raises(DataError, match="does not exist"):
        load_qa_items("msrvtt", tmp_path / "nowhere")


def test_prompts():
    frames = np.zeros((3, 8, 8, 3), dtype=np.uint8)
    qwen = answer_prompt("what is it?", frames, "qwen")
    assert qwen.messages == [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "what is it?"}]}]
    llava = answer_prompt("what is it?", frames, "llava")
    assert len(llava.images) == 3 and llava.text().endswith("<image>\n<image>\n<image>\nwhat is it?")
    grade = grade_prompt("q?", "gold", "pred")
    assert grade.messages[0] == {"role": "system", "content": get_template("T-GPT-JUDGE-SYSTEM").text}
    assert "Question: q?\nCorrect Answer: gold\nPredicted Answer: pred" in grade.messages[1]["content"]


def test_end_to_end_tiny_policy_and_stub_judge(msvd, tiny_models, tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("eval_video_qa", ROOT / "benchmark_evaluation" / "eval_video_qa.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    out = tmp_path / "out"
    with StubOpenAIServer(grade_reply, models=("gpt-judge",)) as server:
        argv = ["--dataset", "msvd", "--data_dir", str(msvd), "--output_dir", str(out),
                "--model", str(tiny_models.path("qwen2_5_vl")), "--num_frames", "2", "--max_new_tokens", "4",
                "--judge_base_url", server.base_url, "--judge_model", "gpt-judge", "--no_progress"]  # fmt: skip
        assert script.main(argv) == 0
        assert len(server.requests) == 4
        body = server.requests[0]
        assert body["model"] == "gpt-judge" and body["temperature"] == 0
        assert body["messages"][0] == {"role": "system", "content": get_template("T-GPT-JUDGE-SYSTEM").text}
        assert server.headers[0]["Authorization"] == "Bearer sk-test-secret"
    results = json.loads((out / "results.json").read_text())
    m, c = results["metrics"], results["counts"]
    assert (m["n"], m["n_valid"], m["n_invalid"], m["n_yes"], m["n_no"]) == (4, 3, 1, 2, 1)
    assert m["accuracy_percent"] == 66.67 and m["accuracy_invalid_as_wrong_percent"] == 50.0
    assert m["mean_score"] == pytest.approx((4 + 1 + 4.8) / 3)
    assert (c["questions"], c["answered"], c["grade_invalid"]) == (4, 4, 1)
    assert (
        results["settings"]["judge_model"] == "gpt-judge"
        and results["settings"]["user_template"] == "T-GPT-JUDGE-USER"
    )
    assert "sk-test-secret" not in "".join(
        p.read_text() for p in out.iterdir() if p.suffix in (".json", ".jsonl", ".md")
    )
    grades = {g["id"]: g for g in read_jsonl(out / "grades.jsonl")}
    assert grades["102"]["status"] == "invalid" and grades["102"]["reason"]
    answers = read_jsonl(out / "answers.jsonl")
    assert [a["status"] for a in answers] == ["valid"] * 4 and all(isinstance(a["pred"], str) for a in answers)
    md = (out / "results.md").read_text()
    assert "66.67" in md and "w/ UnifiedReward DPO" in md and "78.3" in md
    assert (out / "results.png").read_bytes()[:4] == b"\x89PNG"


def test_resume_by_id_and_failed_requests_retried(msvd, tmp_path):
    out = tmp_path / "out"
    with StubOpenAIServer(grade_reply, models=("gpt-judge",)) as server:
        args = qa_args(msvd, out, judge_base_url=server.base_url, judge_model="gpt-judge")
        with pytest.raises(RuntimeError, match="simulated kill"):
            run_videoqa(args, policy=FakePolicy(fail_on_call=2))  # first chunk (2 answers) written, then killed
        assert len(read_jsonl(out / "answers.jsonl")) == 2
        policy = FakePolicy()
        server.script(Fail(400, "bad request"))  # the first grade request fails for good: retried on the next run
        first = run_videoqa(args, policy=policy)
        assert len(policy.prompts) == 2  # only the two missing questions were answered
        assert first["counts"]["judge_errors"] == 1 and first["metrics"]["n_invalid"] == 2
        sent = len(server.requests)
        again = run_videoqa(args, policy=FakePolicy(fail_on_call=1))  # nothing left to answer: the policy is unused
        assert len(server.requests) == sent + 1  # only the failed grade is sent again
    m = again["metrics"]
    assert (m["n_valid"], m["n_invalid"], m["n_yes"]) == (3, 1, 2) and again["counts"]["judge_errors"] == 0
    assert [a["pred"] for a in read_jsonl(out / "answers.jsonl")] == ["it is q0", "it is q1", "it is q2", "it is q3"]
    with pytest.raises(UnifiedRewardError, match="num_frames"):
        run_videoqa(qa_args(msvd, out, num_frames=3, judge_base_url="http://127.0.0.1:9/v1"), policy=FakePolicy())


def test_unreadable_video_is_counted_not_graded(msvd, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "youtube_mapping.txt").write_text((msvd / "youtube_mapping.txt").read_text())
    rows = json.loads((msvd / "test_qa.json").read_text())[:2]
    rows[1]["video_id"] = 3
    (data / "test_qa.json").write_text(json.dumps(rows))
    (data / "videos").mkdir()
    shutil.copy(msvd / "videos" / "4wsuPCjDBc_5_15.avi", data / "videos")  # xyz_2_9.avi (question 1) is missing
    out = tmp_path / "out"
    with StubOpenAIServer(grade_reply, models=("gpt-judge",)) as server:
        args = qa_args(data, out, judge_base_url=server.base_url, judge_model="gpt-judge", truncate_scores=True)
        results = run_videoqa(args, policy=FakePolicy())
        assert len(server.requests) == 1
    assert results["counts"]["media_errors"] == 1 and results["counts"]["graded"] == 1
    assert results["metrics"]["n"] == 1 and results["metrics"]["mean_score"] == 4.0
    (_answer, missing) = read_jsonl(out / "answers.jsonl")
    assert missing["status"] == "media_error" and "xyz_2_9.avi" in missing["reason"]
