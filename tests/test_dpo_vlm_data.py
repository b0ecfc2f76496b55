"""VLM DPO data (unifiedreward.dpo.vlm_data) and the preference collator (unifiedreward.dpo.vlm_collator)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from unifiedreward.dpo.vlm_collator import PreferenceCollator, encode_lengths, render_example, stacks_frames
from unifiedreward.dpo.vlm_data import (
    MediaConfig,
    PreferenceDataset,
    PreferencePair,
    SkipReport,
    check_pairs,
    example_of,
    load_pairs,
    prompt_messages,
)
from unifiedreward.errors import DataError
from unifiedreward.media import Video
from unifiedreward.synth.media import write_clip
from unifiedreward.testing.media import make_frames, write_frame_folder, write_garbage
from unifiedreward.testing.tiny_models import build_tiny_processor

FAMILY = {"qwen2_5_vl": "qwen", "llava_onevision": "llava"}


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    """images/red.png, images/blue.png; videos/clip/ (4 frames), videos/clip.mp4 (8 frames at 4 fps),
    videos/broken.mp4 (garbage)."""
    root = tmp_path_factory.mktemp("dpo_media")
    (root / "images").mkdir()
    Image.new("RGB", (56, 56), (230, 20, 20)).save(root / "images" / "red.png")
    Image.new("RGB", (56, 56), (20, 20, 230)).save(root / "images" / "blue.png")
    write_frame_folder(root / "videos" / "clip", make_frames(4, 56, 56))
    write_garbage(root / "videos" / "broken.mp4")
    write_clip(make_frames(8, 56, 56), root / "videos" / "clip.mp4", fps=4)  # 2 seconds
    return root


@pytest.fixture(scope="module")
def processors():
    return {arch: build_tiny_processor(arch) for arch in FAMILY}


def _write(path: Path, records: list) -> Path:
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


SIFT_RECORD = {  # what infer+sift.py writes (unifiedreward.preference.records)
    "id": "s1",
    "image": "red.png",
    "prompt": "<image>\nWhat colour is it?",
    "chosen": "It is red.",
    "rejected": "It is blue.",
    "chosen_score": 90,
    "rejected_score": 20,
    "evidence": {"rounds": 5},
}
UPSTREAM_RECORD = {  # upstream's released DPO json: no id, video as a list of frame files
    "image": ["clip/0000.jpg", "clip/0001.jpg", "clip/0002.jpg", "clip/0003.jpg"],
    "prompt": "What moves?",
    "chosen": "A square moves right.",
    "rejected": "Nothing.",
}


def test_load_pairs_reads_both_formats_and_resolves_each_media_folder(media, tmp_path):
    video_record = {"id": "v1", "video": "clip", "prompt": "Describe.", "chosen": "a square", "rejected": "a dog"}
    file_record = {**video_record, "id": "f1", "video": "clip.mp4"}
    path = _write(tmp_path / "pairs.json", [SIFT_RECORD, UPSTREAM_RECORD, video_record, file_record])
    report = SkipReport()
    pairs = load_pairs(path, image_folder=media / "images", video_folder=media / "videos", report=report)
    assert [(p.id, p.kind) for p in pairs] == [
        ("s1", "image"), ("pairs.json:1", "video"), ("v1", "video"), ("f1", "video")]  # fmt: skip
    assert pairs[0].root == str(media / "images") and pairs[1].root == pairs[2].root == str(media / "videos")
    assert report.total == 4 and report.num_skipped == 0
    decoded = [PreferenceDataset(pairs, "qwen", MediaConfig(num_frames=2))[i] for i in range(4)]
    assert decoded[0]["images"][0].getpixel((5, 5)) == (230, 20, 20) and "video" not in decoded[0]
    assert isinstance(decoded[1]["video"], Video) and len(decoded[1]["video"]) == 2 and decoded[1]["images"] == []
    assert len(decoded[2]["video"]) == 2  # frame folder sampled to num_frames
    view = pickle.loads(pickle.dumps(PreferenceDataset(pairs, "qwen", MediaConfig()).as_hf_dataset()))  # workers
    assert view[1]["id"] == "pairs.json:1" and isinstance(view[1]["video"], Video) and view[0]["video"] is None
    clip = PreferenceDataset(pairs[3:], "qwen", MediaConfig(num_frames=24, fps=1.0))[0]["video"]
    assert len(clip) == 2 and clip.fps == pytest.approx(4.0)  # a file: sampled at 1 fps over 2 seconds


def test_yaml_mixture_applies_sampling_strategy_and_entry_folders(media, tmp_path):
    first = _write(tmp_path / "a.json", [SIFT_RECORD, {**SIFT_RECORD, "id": "s2"}, {**SIFT_RECORD, "id": "s3"}])
    second = _write(tmp_path / "b.jsonl", [])
    second.write_text(json.dumps({**UPSTREAM_RECORD, "id": "u1"}) + "\n", encoding="utf-8")
    config = tmp_path / "mix.yaml"
    config.write_text(
        f"datasets:\n  - json_path: {first}\n    sampling_strategy: first:2\n    image_folder: {media / 'images'}\n"
        f"  - json_path: {second}\n    video_folder: {media / 'videos'}\n"
    )
    pairs = load_pairs(config)
    assert [p.id for p in pairs] == ["s1", "s2", "u1"]
    assert pairs[0].root == str(media / "images") and pairs[2].root == str(media / "videos")


def test_bad_records_are_skipped_and_counted_with_their_ids(media, tmp_path, processors):
    records = [
        SIFT_RECORD,
        {"id": "no-chosen", "image": "red.png", "prompt": "q", "rejected": "r"},
        {"id": "missing", "image": "nowhere.png", "prompt": "q", "chosen": "c", "rejected": "r"},
        {"id": "corrupt", "video": "broken.mp4", "prompt": "q", "chosen": "c", "rejected": "r"},
        {"id": "long", "image": "blue.png", "prompt": "q", "chosen": "word " * 200, "rejected": "r"},
    ]
    path = _write(tmp_path / "pairs.jsonl", [])
    path.write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
    processor = processors["qwen2_5_vl"]
    report = SkipReport()
    pairs = load_pairs(path, image_folder=media / "images", video_folder=media / "videos", report=report)
    kept, lengths = check_pairs(pairs, processor, "qwen", media=MediaConfig(), max_length=120, report=report)
    assert [p.id for p in kept] == ["s1"] and lengths[0] <= 120
    assert report.ids("invalid") == ["no-chosen"]
    assert report.ids("media") == ["missing", "corrupt"]
    assert report.ids("over-length") == ["long"]
    assert report.counts() == {"invalid": 1, "media": 2, "over-length": 1} and report.total == 5
    with pytest.raises(DataError, match="4 of 5 records skipped"):
        PreferenceDataset.build(
            path, processor, "qwen", image_folder=media / "images", video_folder=media / "videos", max_length=120,
            max_skipped_fraction=0.5,
        )  # fmt: skip


def test_prompt_follows_the_policy_prompt_convention():
    qwen = prompt_messages("<image>\nWhat is shown?", "qwen", "image")
    assert qwen == [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is shown?"}]}]
    llava = prompt_messages("What moves?", "llava", "video")
    assert llava[0]["role"] == "system" and llava[1]["content"][0] == {"type": "video"}
    assert prompt_messages("Hi", "qwen", None)[0]["content"] == [{"type": "text", "text": "Hi"}]


def _video(num_frames: int, seed: int) -> Video:
    return Video(make_frames(num_frames, 56, 56, seed=seed), list(range(num_frames)), num_frames, fps=2.0)


def _independent_rows(example, processor, frames: int):
    """Expected (prompt ids, chosen ids, rejected ids) of one example, each encoded on its own, without padding."""
    texts = render_example(example, processor)
    kwargs = {}
    if example.get("video") is not None:
        video = example["video"]
        if stacks_frames(processor):  # LLaVA-OneVision: the batch's clips are padded to its longest by repetition
            video = Video(np.concatenate([video.frames] + [video.frames[-1:]] * (frames - len(video))))
        kwargs = {"videos": [video.frames], "video_metadata": [{"total_num_frames": len(video), "fps": 2.0,
                  "frames_indices": list(range(len(video)))}], "do_sample_frames": False}  # fmt: skip
    if example["images"]:
        kwargs["images"] = [example["images"]]
    prompt = processor(text=[texts["prompt"]], add_special_tokens=False, **kwargs)["input_ids"][0]
    answers = [processor.tokenizer(texts[k], add_special_tokens=False)["input_ids"] for k in ("chosen", "rejected")]
    return list(prompt), answers[0], answers[1]


@pytest.mark.parametrize("arch", list(FAMILY))
def test_video_collator_masks_equal_an_independently_built_mask(arch, processors):
    processor = processors[arch]
    family = FAMILY[arch]
    examples = [
        example_of(PreferencePair("a", "What moves in the clip?", "A square.", "Nothing moves here.", "video"),
                   _video(4, 0), family),
        example_of(PreferencePair("b", "Colour?", "Bright and saturated colour.", "Grey.", "video"), _video(2, 1),
                   family),
    ]  # fmt: skip
    if arch == "qwen2_5_vl":  # a batch may mix images and videos
        image = Image.new("RGB", (56, 56), (0, 200, 0))
        examples.append(
            example_of(PreferencePair("c", "What?", "green", "a long wrong answer", "image"), image, family)
        )
    batch = PreferenceCollator(processor)(examples)
    size = len(examples)
    assert batch["input_ids"].shape[0] == 2 * size
    tokenizer = processor.tokenizer
    video_id = tokenizer.convert_tokens_to_ids(processor.video_token)
    image_id = tokenizer.convert_tokens_to_ids(processor.image_token)
    for index, example in enumerate(examples):
        prompt, chosen, rejected = _independent_rows(example, processor, frames=4)
        for row, answer in ((index, chosen), (size + index, rejected)):
            expected = prompt + answer
            length = len(expected)
            assert batch["input_ids"][row, :length].tolist() == expected, (arch, row)
            assert batch["attention_mask"][row].tolist() == [1] * length + [0] * (batch["input_ids"].shape[1] - length)
            mask = [0] * len(prompt) + [1] * len(answer)
            assert batch["completion_mask"][row].tolist() == mask + [0] * (batch["input_ids"].shape[1] - length)
            if "mm_token_type_ids" in batch:
                types = [2 if t == video_id else 1 if t == image_id else 0 for t in expected]
                assert batch["mm_token_type_ids"][row, :length].tolist() == types
                assert batch["mm_token_type_ids"][row, length:].eq(0).all()
            if not stacks_frames(processor) or len(example.get("video") or ()) == 4:
                assert encode_lengths(example, processor) == len(prompt) + max(len(chosen), len(rejected))
    assert "video_metadata" not in batch
    grid_key = "video_grid_thw" if "video_grid_thw" in batch else None
    if grid_key:  # media of [examples; examples]
        assert batch[grid_key].shape[0] == 4 and torch.equal(batch[grid_key][:2], batch[grid_key][2:])
    else:
        assert batch["pixel_values_videos"].shape[0] == 4


def test_image_only_batches_go_through_trls_collator(processors):
    from trl.trainer.dpo_trainer import DataCollatorForVisionPreference

    processor = processors["qwen2_5_vl"]
    image = Image.fromarray(np.full((56, 56, 3), 120, dtype=np.uint8))
    examples = [example_of(PreferencePair(str(i), "What?", "grey", "red" * (i + 1), "image"), image, "qwen")
                for i in range(2)]  # fmt: skip
    ours = PreferenceCollator(processor)(examples)
    theirs = DataCollatorForVisionPreference(processor)([dict(e) for e in examples])
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key
    assert all("video" not in e for e in examples) and examples[0]["images"] == [image]  # inputs left intact
