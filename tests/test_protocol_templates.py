"""Pins every upstream template byte for byte, and checks selection and rendering.

The released checkpoints were trained on these exact strings. If a hash below fails, the template text changed:
that is only right if upstream changed it (update the reference, regenerate with scripts/dev/extract_templates.py,
and update the hash in the same commit).
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unifiedreward.errors import TemplateError
from unifiedreward.media import Video
from unifiedreward.protocol import (
    LLAVA_SYSTEM_PROMPT,
    TEMPLATES,
    Mode,
    Task,
    fill_template,
    get_template,
    raw_templates,
    render_prompt,
    select_template,
)

pytestmark = pytest.mark.unit

TEMPLATE_SHA256 = {
    "T-IG-PAIR-LLAVA": "238e0ad4624e5d43440c58b440c624688368160c767883a5f4234a6f241ba11b",
    "T-IG-PAIR-QWEN": "0fd2f5c43a06516503fde3e64ffc98fff6f3a8815b5eac8dc5f0d81cee686614",
    "T-IG-POINT": "d397c380b8b0ee1c2e37bc53fa10360431f43013c69c097a4f3072556363e085",
    "T-IG-POINT-ACS-V15": "603a426c671b50c5c0dbb2f2efa3237ad63f5badc9af169d1b2914bc8ee2dc09",
    "T-IU-PAIR-LLAVA": "ebce4d94180e8e360c02e9512857fcb2090cb969dfd184523638d8169af8b8b1",
    "T-IU-PAIR-QWEN": "a151a65f4a8bfd84d045bd86a425c67bc6a424277291925a72e43954f60fba71",
    "T-IU-POINT-LLAVA": "4c8155073a8cfb0b8d87e8ac98d0b51ff27632c7c11a4f1e9beaefab6f380f5f",
    "T-IU-POINT-QWEN": "84db25431a5df9ba9c94337df32aeb3850cc37e3f51399c6016be074d8ec75e1",
    "T-VG-PAIR-LLAVA": "6aca3dbb569d15bff5047468bd2af6e552b74572cd643cca257c9d4f7c0a5cde",
    "T-VG-PAIR-QWEN": "c76ba521846dcdd36e30046c8ceac18840cb6b0ad5f5a7bc731102b2267f2db9",
    "T-VG-POINT": "514a6343388979f80886656c5cb7d05f2286f2c837f5d1e1435ae0daf00ece68",
    "T-VU-PAIR": "97f1d4ff315cef1133cf09f144ae357986e5ab43ba7170854cbb19e8cb8e842e",
    "T-VU-PAIR-LLAVA-HEAD": "3a542dedb79ebe926aad126076a221320d1d9dda7a49b4b99849f1dc043c200b",
    "T-VU-POINT": "0987f16800daf41ce3430870877c91ea69a479f57d17853869d639f22f25e822",
    "T-V2-PAIRSCORE-IMG": "828e9ab2f81c3b6d42fb68dd5b8ea1b7647063c4b5d79a98d003ff25de5c5ca8",
    "T-V2-PAIRSCORE-VID": "2604f95ceb958851760b5c5cfca7db848f8d69046b7da701802621860fa415ba",
    "T-V2-POINT-ACS": "75d52d3ae771f89b682db3b74cdaca1c7bde373a39162bc1c9dabd63cdc9b851",
    "T-V2-POINT-APS": "707411fb9175547e74f145ae3efa459d621f11afcca076659a5588848e91e1c7",
    "T-THINK-IG": "f925103328b923c6344a8139c995d097637e9d691cd6173d523b93262dc7c842",
    "T-THINK-IU": "be1eadea5efbbaaa49b8284b76700b385fe325ca7f517fe28610282b2a5f128b",
    "T-THINK-VG": "f45197425b810d08e0067579cfd59e105a1f9bf8e5850ba879c638080cadc61e",
    "T-THINK-VU": "3b7a396e77542f16f331568b90588527aa1f77e988b0ccbdfb4d4a53cb9ed484",
    "T-THINK3-IG": "a8a0d80818246406b783d5cca630336c5fdf1264fef13f09d09bd94d61a139d5",
    "T-THINK3-IU": "5ed2be014a8844dde75f62321e05c6f4e4932e8a80e2972575ef7391bfd5a96f",
    "T-THINK3-VG": "e40c6e7f767f2cca279d599365ee4066a7f49dd3dc55328d36d01bbc0a8ec3ab",
    "T-THINK3-VU": "5eaaee95d98dabbfb391f8abbd17a845f08153d666a30deb10887ff128c62bb2",
    "T-GRPO-SYSTEM": "89e8be09d8ba0f3759eb79471ef87c2cf6797879a6d4e8e4772ec877a263e593",
    "T-EDIT-PAIRRANK": "03ca2aaeeade8e880d84ec75296c27d74afacbe024611b1b0f693314df7732d6",
    "T-EDIT-PAIRSCORE": "6c53b045ed55242caa31913324f276b693e099074dcad32065fcef21456ce09a",
    "T-EDIT-POINT-IF": "401b9a17aec0a3c317af607ac470c8b4f2470fabc0930fde474bf26971d6ab49",
    "T-EDIT-POINT-Q": "ddb40baa511dbf2fd619474e5a0fcd043c6325f976bfc8fd1f8b9fbf4c521113",
    "T-FLEX-IMG": "bd0c2d5635a7b6b3f382416789dad5c71563d9b68eeacfe75ece5795dff5ebda",
    "T-FLEX-VID": "dd95da9d5f2b830a2d6f497454dac025547f1d118d01f477778bd1a7ffa07534",
    "T-PREF-IU-PAIR": "89914ef0ae8e68e2bf26428e7b9d8141cb0748709b2b5ec354ee8f4a63d5dab1",
    "T-PREF-VU-PAIR": "cc785a4af2062f8a2e9ceadfa6aeb73135f7b7079c06fa0d85bf772cc25291ab",
    "T-IG-POINT-10": "56f45c90cf8a8068e53d241f0ec510d9bca495c72001ce81661bcbc4036552a6",
    "T-VG-PAIR-VDPO": "8e5220602948cc9da7e0d80655c150775066377a47e3f24ee3bc31bbb5ac6431",
    "T-VG-POINT-VDPO": "7b5f54642c8beaa3f23af6eb8f7dc95c40bfc5be7a3dbab3b3f187c292cbe7d5",
    "T-IG-POINT-SGLANG": "d68ab1dcf4dc3a39ec5dfab963d17fe30a6e5f713eb49f743ed88a4c8ce4317f",
    "T-GPT-JUDGE-SYSTEM": "12b9e42d120081bf1e7f1999bb09db2db250add544abd3c183d61a2f938c6510",
    "T-GPT-JUDGE-USER": "66490ee04d3bedaa932916173b5522bb8748c93d422666446671e2e2a965f3c0",
}

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "unifiedreward-protocol.md"


def test_every_template_is_pinned():
    texts = raw_templates()
    assert set(texts) == set(TEMPLATE_SHA256) == set(TEMPLATES)
    for tid, text in texts.items():
        assert hashlib.sha256(text.encode("utf-8")).hexdigest() == TEMPLATE_SHA256[tid], tid


@pytest.mark.skipif(not REFERENCE.exists(), reason="protocol reference not checked out beside the repo")
def test_templates_equal_the_reference():
    path = Path(__file__).resolve().parents[1] / "scripts" / "dev" / "extract_templates.py"
    spec = importlib.util.spec_from_file_location("extract_templates", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.extract(REFERENCE.read_text(encoding="utf-8")) == raw_templates()


def test_whitespace_sensitive_templates_kept_exactly():
    texts = raw_templates()
    # triple-quoted f-string: starts with a newline, 12-space indent, lines ending in two spaces
    assert texts["T-IU-POINT-QWEN"].startswith("\n            You are provided with an image")
    assert texts["T-IU-POINT-QWEN"].endswith("Response: [{Response}]\n            ")
    assert "Accuracy in Object Description:  \n" in texts["T-IU-POINT-QWEN"]
    # two lines of the video point prompt end with a trailing space
    assert "output a number from [1,2,3,4], \nin which" in texts["T-VG-POINT"]
    # image pairs in LLaVA prompts: a space before the second token
    assert texts["T-IG-PAIR-LLAVA"].startswith("<image>\n <image>\nYou are given")
    assert texts["T-THINK3-IG"].count("「{prompt}」") == 1
    assert texts["T-VG-PAIR-VDPO"].count("<image>") == 16


def test_each_task_and_mode_has_qwen_and_llava_templates():
    for task in (Task.IMAGE_GENERATION, Task.IMAGE_UNDERSTANDING, Task.VIDEO_GENERATION, Task.VIDEO_UNDERSTANDING):
        for mode in (Mode.PAIR_RANK, Mode.POINT_SCORE):
            for family in ("qwen", "llava"):
                spec = select_template(task, mode, family)
                assert spec.task is task and spec.mode is mode and family in spec.families
    assert select_template("image_generation", "pair_rank", "qwen").id == "T-IG-PAIR-QWEN"
    assert select_template("image_generation", "pair_rank", "llava").id == "T-IG-PAIR-LLAVA"
    assert select_template("video_generation", "pair_rank", "qwen").id == "T-VG-PAIR-QWEN"
    assert select_template("image_understanding", "point_score", "qwen").id == "T-IU-POINT-QWEN"
    assert select_template("image_generation", "pair_score", "qwen", "2.0").id == "T-V2-PAIRSCORE-IMG"
    assert select_template("video_generation", "point_score", "qwen", "2.0").id == "T-V2-POINT-APS"
    assert select_template("image_generation", "pair_rank", "qwen", "2.0").id == "T-IG-PAIR-QWEN"
    assert select_template("video_understanding", "pair_rank", "qwen", "think").id == "T-THINK-VU"
    assert select_template("image_understanding", "pair_rank", "qwen", "think-qwen3").id == "T-THINK3-IU"
    with pytest.raises(TemplateError, match="no template"):
        select_template("image_generation", "pair_score", "llava", "2.0")
    with pytest.raises(TemplateError):
        select_template("painting", "pair_rank")
    with pytest.raises(TemplateError, match="unknown template id"):
        get_template("T-NOPE")


def test_fill_template_replaces_only_known_placeholders():
    text = fill_template("T-FLEX-IMG", prompt="a {weird} caption with {R1}")
    assert "a {weird} caption with {R1}" in text
    assert "{prompt}" not in text
    # the JSON skeleton's literal braces are untouched; only {prompt} was replaced
    assert text.count("{") == raw_templates()["T-FLEX-IMG"].count("{") - 1 + 2
    text = fill_template("T-IU-PAIR-QWEN", question="Q?", answer1="A", answer2="B")
    assert text.endswith("Question: Q?\nAnswer 1: A\nAnswer 2: B\n")
    assert fill_template("T-IU-PAIR-QWEN", Query="Q?", R1="A", R2="B") == text
    with pytest.raises(TemplateError, match="missing fields"):
        fill_template("T-IU-PAIR-QWEN", question="Q?", answer1="A")
    with pytest.raises(TemplateError, match="unexpected"):
        fill_template("T-IG-PAIR-QWEN", prompt="x", question="y")
    grade = fill_template("T-GPT-JUDGE-USER", question="q", answer="gold", pred="guess")
    assert "Correct Answer: gold\nPredicted Answer: guess" in grade
    assert "{'pred': 'yes', 'score': 4.8}" in grade


def _images(n):
    return [Image.new("RGB", (16 + i, 16), (i * 40, 0, 0)) for i in range(n)]


def _video(frames=4):
    return Video(frames=np.zeros((frames, 8, 8, 3), dtype=np.uint8), frame_indices=list(range(frames)),
                 total_num_frames=frames, fps=2.0)  # fmt: skip


def test_render_qwen_image_pair_matches_upstream_layout():
    imgs = _images(2)
    prompt = render_prompt(task="image_generation", mode="pair_rank", family="qwen", images=imgs, prompt="a red cube")
    (message,) = prompt.messages
    assert message["role"] == "user"
    assert [part["type"] for part in message["content"]] == ["image", "image", "text"]
    assert message["content"][2]["text"] == fill_template("T-IG-PAIR-QWEN", prompt="a red cube")
    assert prompt.images == imgs and prompt.videos == []
    assert prompt.meta == {"template_id": "T-IG-PAIR-QWEN", "family": "qwen"}


def test_render_qwen_strips_the_llava_image_token_prefix():
    prompt = render_prompt("T-IG-POINT", family="qwen", images=_images(1), prompt="cat")
    text = prompt.messages[0]["content"][-1]["text"]
    assert text == raw_templates()["T-IG-POINT"].replace("{prompt}", "cat")[len("<image>\n") :]
    prompt = render_prompt("T-THINK-IG", family="qwen", images=_images(2), prompt="cat")
    assert prompt.messages[0]["content"][-1]["text"].startswith("Given a caption and two images")


def test_render_llava_image_pair_keeps_inline_tokens_and_system_turn():
    prompt = render_prompt(task="image_generation", mode="pair_rank", family="llava", images=_images(2), prompt="x")
    system, user = prompt.messages
    assert system == {"role": "system", "content": [{"type": "text", "text": LLAVA_SYSTEM_PROMPT}]}
    assert user["content"][0]["text"] == fill_template("T-IG-PAIR-LLAVA", prompt="x")
    assert user["content"][0]["text"].startswith("<image>\n <image>\nYou are given")
    assert len(prompt.images) == 2


def test_render_llava_video_pair_feeds_frames_as_images():
    prompt = render_prompt(
        task="video_generation", mode="pair_rank", family="llava", videos=[_video(3), _video(5)], prompt="x"
    )
    text = prompt.messages[1]["content"][0]["text"]
    assert text == "<image>\n" * 8 + fill_template("T-VG-PAIR-LLAVA", prompt="x")
    assert len(prompt.images) == 8 and prompt.videos == []
    assert all(isinstance(frame, Image.Image) for frame in prompt.images)


def test_render_llava_understanding_prefixes_one_token_per_image():
    prompt = render_prompt(
        task="image_understanding", mode="pair_rank", family="llava", images=_images(1),
        question="q", answer1="a", answer2="b",
    )  # fmt: skip
    text = prompt.messages[1]["content"][0]["text"]
    assert text == "<image>\n" + fill_template("T-IU-PAIR-QWEN", question="q", answer1="a", answer2="b")


def test_render_qwen_video_and_understanding():
    video = _video()
    prompt = render_prompt(
        task="video_understanding", mode="point_score", family="qwen", videos=[video], question="q", response="r"
    )
    assert [p["type"] for p in prompt.messages[0]["content"]] == ["video", "text"]
    assert prompt.videos == [video]
    assert prompt.messages[0]["content"][1]["text"].endswith("Question: [q]\nResponse: [r]")


def test_render_rejects_wrong_media_and_family():
    with pytest.raises(TemplateError, match="expects 2 image"):
        render_prompt("T-IG-PAIR-QWEN", images=_images(1), prompt="x")
    with pytest.raises(TemplateError, match="expects 0 image"):
        render_prompt("T-VG-PAIR-QWEN", images=_images(2), prompt="x")
    with pytest.raises(TemplateError, match="not defined for llava"):
        render_prompt("T-V2-POINT-ACS", family="llava", images=_images(1), prompt="x")
    with pytest.raises(TemplateError, match="carries 16"):
        render_prompt("T-VG-PAIR-VDPO", family="llava", videos=[_video(4), _video(4)], prompt="x")
    with pytest.raises(TemplateError, match="needs a template"):
        render_prompt(family="qwen")
