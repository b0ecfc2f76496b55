"""One bad item must not stop a judge run: ``run_judge`` end to end with the tiny transformers model.

Before the fix, a processor ``ValueError`` (an image with aspect ratio > 200) escaped ``generate``,
``RewardJudge.judge()`` and ``run_judge``: the run exited, and a resume failed on the same chunk for good.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unifiedreward.judge import TransformersBackend
from unifiedreward.judge.arguments import JudgeArguments
from unifiedreward.judge.cli import run_judge
from unifiedreward.testing.media import make_image

pytestmark = pytest.mark.smoke


class NoBackend:
    def generate(self, prompts, config):
        raise AssertionError("the backend was called")


@pytest.mark.parametrize("scoring", ["generate", "probabilities"])
def test_run_survives_an_image_the_processor_rejects(scoring, tiny_models, tmp_path):
    model, processor = tiny_models("qwen2_5_vl")
    make_image(48, 32, (200, 0, 0), shape="circle").save(tmp_path / "red.png")
    make_image(32, 48, (0, 0, 200), shape="square").save(tmp_path / "blue.png")
    make_image(2, 600, (0, 0, 0)).save(tmp_path / "sliver.png")  # aspect ratio 300: the Qwen processor refuses it
    rows = [{"id": f"r{i}", "task": "image_generation", "mode": "pair_rank", "prompt": f"caption {i}",
             "images": ["red.png", "sliver.png" if i == 1 else "blue.png"]} for i in range(4)]  # fmt: skip
    source = tmp_path / "requests.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    output = tmp_path / "results.jsonl"
    args = JudgeArguments(input=str(source), output=str(output), chunk_size=4, progress=False, scoring=scoring,
                          max_new_tokens=4)  # fmt: skip
    summary = run_judge(args, backend=TransformersBackend(model, processor, batch_size=4))
    records = {record["id"]: record for record in map(json.loads, Path(output).read_text().splitlines())}
    assert sorted(records) == ["r0", "r1", "r2", "r3"] and summary["judged"] == 4
    assert records["r1"]["status"] == "invalid" and "aspect ratio" in records["r1"]["reason"]
    if scoring == "probabilities":
        assert all(records[key]["status"] == "valid" for key in ("r0", "r2", "r3"))
    # the run finished: a resume has nothing left to do
    again = run_judge(args, backend=NoBackend())
    assert (again["judged"], again["skipped_done"]) == (0, 4)
