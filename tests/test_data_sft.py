"""SFT samples (unifiedreward.data.sft): label masks token by token, record kinds to model inputs, bad samples."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
from PIL import Image

from unifiedreward.data import parse_record
from unifiedreward.data.sft import (
    IGNORE_INDEX,
    BadDataError,
    LabelError,
    MediaOptions,
    SFTCollator,
    SupervisedDataset,
    assistant_spans,
    build_messages,
)
from unifiedreward.testing.media import make_frames, write_frame_folder, write_garbage, write_video
from unifiedreward.testing.tiny_models import build_tiny_model, build_tiny_processor

pytestmark = pytest.mark.smoke

FAMILY = {"qwen2_5_vl": "qwen", "qwen2_vl": "qwen", "qwen3_vl": "qwen", "llava_onevision": "llava"}
EOT = "<|im_end|>"


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models on a shared 2-core box run much faster (and steadier) on one thread."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """Images, a video file, a frame folder and broken files in one folder."""
    root = tmp_path_factory.mktemp("sft_media")
    rng = np.random.default_rng(0)
    for name, (h, w) in {"a.png": (56, 56), "b.png": (56, 84), "c.png": (84, 56)}.items():
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / name)
    frames = make_frames(8, 64, 64)
    write_video(root / "clip.mp4", frames, fps=4)  # 2 s: 2 frames at video_fps 1
    write_frame_folder(root / "frames", frames)
    write_garbage(root / "corrupt.jpg")
    return root


def _record(data: dict, root, index: int = 0):
    return parse_record(data, source="train.json", index=index, media_folder=root)


@pytest.fixture(scope="module")
def processors():
    cache = {}

    def get(arch):
        if arch not in cache:
            cache[arch] = build_tiny_processor(arch)
        return cache[arch]

    return get


def _labelled_runs(sample, tokenizer) -> list[str]:
    """Decode each maximal run of labelled tokens."""
    ids, labels = sample["input_ids"].tolist(), sample["labels"].tolist()
    runs, current = [], []
    for token, label in zip(ids, labels, strict=True):
        if label != IGNORE_INDEX:
            assert label == token, "a label differs from its input token"
            current.append(token)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return [tokenizer.decode(run, skip_special_tokens=False) for run in runs]


# --------------------------------------------------------------------------------------------------- label mask
MULTI_TURN = {
    "id": "mt",
    "image": ["a.png", "b.png"],
    "conversations": [
        {"from": "human", "value": "<image>\n<image>\nWhich image is better? Answer 1 is better or 2 is better."},
        {"from": "gpt", "value": "Image 1 is better."},
        {"from": "human", "value": "Why?"},
        {"from": "gpt", "value": "Because the colours match the caption."},
    ],
}


@pytest.mark.parametrize("arch", ["qwen2_5_vl", "llava_onevision", "qwen3_vl"])
def test_labels_are_exactly_the_answers_and_end_of_turn(arch, media, processors):
    processor = processors(arch)
    tokenizer = processor.tokenizer
    dataset = SupervisedDataset([_record(MULTI_TURN, media)], processor, family=FAMILY[arch])
    sample = dataset[0]
    answers = [turn["value"] for turn in MULTI_TURN["conversations"] if turn["from"] == "gpt"]
    # decoding the labelled tokens gives exactly the answers, each closed by <|im_end|>, and nothing else
    assert _labelled_runs(sample, tokenizer) == [answer + EOT for answer in answers]

    # token by token: the expected mask, from the tokenization of each answer on its own
    ids, labels = sample["input_ids"].tolist(), sample["labels"].tolist()
    eot_id = tokenizer.convert_tokens_to_ids(EOT)
    im_start = tokenizer.convert_tokens_to_ids("<|im_start|>")
    header = tokenizer("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"]
    expected = [IGNORE_INDEX] * len(ids)
    search_from = 0
    for answer in answers:
        answer_ids = tokenizer(answer + EOT, add_special_tokens=False)["input_ids"]
        window = header + answer_ids
        start = next(i for i in range(search_from, len(ids)) if ids[i : i + len(window)] == window)
        for position in range(start + len(header), start + len(window)):
            expected[position] = ids[position]
        search_from = start + len(window)
    assert labels == expected
    # the prompt's special tokens, media tokens and the newline after <|im_end|> are never labelled
    media_ids = {
        tokenizer.convert_tokens_to_ids(t) for t in ("<|image_pad|>", "<image>") if t in tokenizer.get_vocab()
    }
    for position, token in enumerate(ids):
        if token in media_ids or token == im_start:
            assert labels[position] == IGNORE_INDEX
        if token == eot_id and labels[position] != IGNORE_INDEX:
            assert labels[position + 1] == IGNORE_INDEX  # the "\n" after <|im_end|>
    # the system and user turns' <|im_end|> are not labelled (upstream trained on them)
    assert sum(label == eot_id for label in labels) == len(answers)
    assert ids.count(eot_id) == 2 * len(answers) + 1  # system, 2 x (user, assistant)


def test_answer_starting_with_whitespace_keeps_its_text(media, processors):
    record = _record(
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "  Two spaces first."}]}, media
    )
    processor = processors("qwen2_5_vl")
    sample = SupervisedDataset([record], processor, family="qwen")[0]
    (run,) = _labelled_runs(sample, processor.tokenizer)
    assert run.endswith("Two spaces first." + EOT)


def test_assistant_spans_checks_the_template_is_incremental():
    class Forgetful:  # a template that drops earlier turns from the history (as some "thinking" templates do)
        def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=False):
            shown = messages[-2:]
            text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in shown)
            return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")

    messages = [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "a2"},
    ]
    with pytest.raises(LabelError, match="not incremental"):
        assistant_spans(Forgetful(), messages)
    with pytest.raises(LabelError, match="no assistant turn"):
        assistant_spans(Forgetful(), messages[:1])


@pytest.mark.unit
def test_build_messages_per_family(media):
    record = _record(MULTI_TURN, media)
    messages, images, videos = build_messages(record, "qwen")
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert [p["type"] for p in messages[0]["content"]] == ["image", "image", "text"]
    assert [p.path for p in images] == [str(media / "a.png"), str(media / "b.png")] and videos == []
    messages, _, _ = build_messages(record, "llava")
    assert messages[0] == {"role": "system", "content": "You are a helpful assistant."}
    assert messages[1]["content"].startswith("<image>\n<image>\nWhich image")


# --------------------------------------------------------------------------------------------------- record kinds
KINDS = {
    "single_image": {"image": "a.png", "conversations": [{"from": "human", "value": "<image>\nScore it."}]},
    "several_images": {
        "image": ["a.png", "b.png", "c.png"],
        "conversations": [{"from": "human", "value": "<image>\n<image>\n<image>\nWhich is best?"}],
    },
    "video_file": {"video": "clip.mp4", "conversations": [{"from": "human", "value": "<video>\nRate the video."}]},
    "frame_folder": {"video": "frames", "conversations": [{"from": "human", "value": "Rate the video."}]},
    "frame_list": {
        "images": [f"frames/{i:04d}.jpg" for i in range(8)],
        "conversations": [{"from": "human", "value": "<image>\nRate the video."}],
    },
    "text_only": {"conversations": [{"from": "human", "value": "Which answer is better?"}]},
}
EXPECTED_MEDIA = {  # (images, videos)
    "single_image": (1, 0),
    "several_images": (3, 0),
    "video_file": (0, 1),
    "frame_folder": (0, 1),
    "frame_list": (0, 1),
    "text_only": (0, 0),
}


@pytest.fixture(scope="module")
def tiny_model_of():
    cache = {}

    def get(arch, processor):
        if arch not in cache:
            cache[arch] = build_tiny_model(arch, processor.tokenizer).train()
        return cache[arch]

    return get


@pytest.mark.parametrize("arch", ["qwen2_5_vl", "qwen3_vl", "llava_onevision"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_record_kinds_to_model_inputs(arch, kind, media, processors, tiny_model_of):
    data = json.loads(json.dumps(KINDS[kind]))
    data["conversations"].append({"from": "gpt", "value": "Final Score: 4"})
    record = _record(data, media)
    processor = processors(arch)
    dataset = SupervisedDataset(
        [record], processor, family=FAMILY[arch], media=MediaOptions(frames_upbound=4, video_fps=1.0)
    )
    sample = dataset[0]
    assert dataset.counts()["dropped"] == 0
    n_images, n_videos = EXPECTED_MEDIA[kind]
    if arch == "llava_onevision":
        assert ("pixel_values" in sample) == bool(n_images) and ("pixel_values_videos" in sample) == bool(n_videos)
        if n_images:
            assert sample["image_sizes"].shape[0] == n_images
    else:
        assert sample.get("image_grid_thw", torch.zeros(0, 3)).shape[0] == n_images
        assert sample.get("video_grid_thw", torch.zeros(0, 3)).shape[0] == n_videos
        assert sample["mm_token_type_ids"].shape == sample["input_ids"].shape
    assert _labelled_runs(sample, processor.tokenizer) == ["Final Score: 4" + EOT]
    batch = SFTCollator(dataset.pad_token_id)([sample])
    model = tiny_model_of(arch, processor)
    out = model(**batch)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    model.zero_grad()


def test_video_sampling_follows_frames_upbound_and_fps(media, processors):
    record = _record(
        KINDS["frame_folder"]
        | {"conversations": KINDS["frame_folder"]["conversations"] + [{"from": "gpt", "value": "3"}]},
        media,
    )
    processor = processors("qwen2_5_vl")
    dataset = SupervisedDataset([record], processor, family="qwen", media=MediaOptions(frames_upbound=4))
    _, videos = dataset.load_media([], record.media_parts())
    assert videos[0].frame_indices == [0, 2, 5, 7]  # 4 of 8 frames, uniformly
    clip = _record(
        KINDS["video_file"]
        | {"conversations": KINDS["video_file"]["conversations"] + [{"from": "gpt", "value": "3"}]},
        media,
    )
    dataset = SupervisedDataset([clip], processor, family="qwen", media=MediaOptions(frames_upbound=8, video_fps=1.0))
    _, videos = dataset.load_media([], clip.media_parts())
    assert len(videos[0]) == 2  # a 2 s clip at 1 frame per second


# --------------------------------------------------------------------------------------------------- bad samples
def _qa(index: int, **media_keys) -> dict:
    text = "<image>\nIs this good?" if media_keys else f"Question {index}?"
    return {
        "id": f"rec{index}",
        **media_keys,
        "conversations": [{"from": "human", "value": text}, {"from": "gpt", "value": f"Answer {index}."}],
    }


def test_bad_media_is_skipped_counted_and_logged(media, processors, caplog):
    records = [
        _record(_qa(0, image="a.png"), media, 0),
        _record(_qa(1, image="missing.png"), media, 1),
        _record(_qa(2, image="corrupt.jpg"), media, 2),
        _record(_qa(3, image="b.png"), media, 3),
    ]
    dataset = SupervisedDataset(records, processors("qwen2_5_vl"), family="qwen", max_bad_fraction=1.0)
    tokenizer = dataset.processor.tokenizer
    with caplog.at_level(logging.WARNING, logger="unifiedreward.data.sft"):
        samples = [dataset[i] for i in range(len(dataset))]
    # indices 1 and 2 are replaced by the next usable sample (3); nothing is truncated or silently duplicated
    assert [_labelled_runs(s, tokenizer) for s in samples] == [["Answer 0." + EOT]] + [["Answer 3." + EOT]] * 3
    assert dataset.counts() == {"tried": 4, "ok": 2, "dropped": 2, "media": 2, "over-length": 0, "invalid": 0}
    assert dataset.dropped_ids() == ["rec1", "rec2"]
    assert "'rec1'" in caplog.text and "missing.png" in caplog.text and "'rec2'" in caplog.text
    # known-bad indices are not decoded again
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="unifiedreward.data.sft"):
        dataset[1]
    assert caplog.text == ""


def test_bad_fraction_stops_with_a_clear_message(media, processors):
    records = [_record(_qa(i, image="a.png" if i % 3 == 0 else "missing.png"), media, i) for i in range(9)]
    dataset = SupervisedDataset(
        records, processors("qwen2_5_vl"), family="qwen", max_bad_fraction=0.25, bad_fraction_min_samples=3
    )
    with pytest.raises(BadDataError, match=r"too many bad samples: 2 of the 3 .*media 2.*max_bad_fraction=0.25"):
        for i in range(len(dataset)):
            dataset[i]


def test_over_length_sample_is_dropped_not_truncated(media, processors):
    long_answer = "word " * 60
    records = [
        _record(
            {"id": "long", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": long_answer}]},
            media,
            0,
        ),
        _record(_qa(1), media, 1),
    ]
    dataset = SupervisedDataset(
        records, processors("qwen2_5_vl"), family="qwen", model_max_length=64, max_bad_fraction=1.0
    )
    sample = dataset[0]
    assert sample["input_ids"].shape[0] <= 64
    assert _labelled_runs(sample, dataset.processor.tokenizer) == ["Answer 1." + EOT]
    assert dataset.counts()["over-length"] == 1 and dataset.dropped_ids() == ["long"]


def test_counts_are_shared_with_dataloader_workers(media, processors):
    records = [_record(_qa(i, image="a.png" if i % 2 else "missing.png"), media, i) for i in range(6)]
    dataset = SupervisedDataset(records, processors("qwen2_5_vl"), family="qwen", max_bad_fraction=1.0)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=2, num_workers=2, collate_fn=SFTCollator(dataset.pad_token_id)
    )
    batches = list(loader)
    assert len(batches) == 3
    assert dataset.counts()["media"] == 3 and dataset.dropped_ids() == ["rec0", "rec2", "rec4"]


# --------------------------------------------------------------------------------------------------- collator, lengths
def test_collator_pads_right_with_ignore_labels(media, processors):
    records = [
        _record(_qa(0, image="a.png"), media, 0),
        _record(_qa(1), media, 1),
        _record(_qa(2, image="b.png"), media, 2),
    ]
    dataset = SupervisedDataset(records, processors("qwen2_5_vl"), family="qwen")
    samples = [dataset[i] for i in range(3)]
    batch = SFTCollator(dataset.pad_token_id, pad_to_multiple_of=8)([samples[1], samples[0], samples[2]])
    length = batch["input_ids"].shape[1]
    assert length % 8 == 0 and length >= max(s["input_ids"].shape[0] for s in samples)
    for row, sample in enumerate([samples[1], samples[0], samples[2]]):
        n = sample["input_ids"].shape[0]
        assert torch.equal(batch["input_ids"][row, :n], sample["input_ids"])
        assert (batch["input_ids"][row, n:] == dataset.pad_token_id).all()
        assert (batch["labels"][row, n:] == IGNORE_INDEX).all() and (batch["attention_mask"][row, n:] == 0).all()
        assert (batch["attention_mask"][row, :n] == 1).all() and (batch["mm_token_type_ids"][row, n:] == 0).all()
    assert batch["image_grid_thw"].shape[0] == 2
    assert batch["pixel_values"].shape[0] == samples[0]["pixel_values"].shape[0] + samples[2]["pixel_values"].shape[0]


def test_collator_pads_llava_anyres_tiles():
    first = {"input_ids": torch.tensor([1, 2]), "pixel_values": torch.ones(1, 2, 3, 4, 4)}
    second = {"input_ids": torch.tensor([3]), "pixel_values": torch.ones(1, 5, 3, 4, 4)}
    batch = SFTCollator(0)([first, second])
    assert batch["pixel_values"].shape == (2, 5, 3, 4, 4) and batch["pixel_values"][0, 2:].abs().sum() == 0
    with pytest.raises(ValueError, match="cannot batch 'pixel_values_videos'"):
        SFTCollator(0)(
            [
                {"input_ids": torch.tensor([1]), "pixel_values_videos": torch.ones(1, 2, 3, 4, 4)},
                {"input_ids": torch.tensor([1]), "pixel_values_videos": torch.ones(1, 3, 3, 4, 4)},
            ]
        )


def test_length_estimates_need_no_media(media, processors):
    records = [
        _record(_qa(0), media, 0),
        _record(_qa(1, image="missing.png"), media, 1),
        _record(
            KINDS["video_file"]
            | {"conversations": KINDS["video_file"]["conversations"] + [{"from": "gpt", "value": "3"}]},
            media,
            2,
        ),
    ]
    dataset = SupervisedDataset(records, processors("qwen2_5_vl"), family="qwen")
    lengths = dataset.lengths
    assert len(lengths) == 3 and lengths[0] < lengths[1]  # the image adds tokens (the file is never opened)
    assert dataset.counts()["tried"] == 0
    true_text_length = dataset[0]["input_ids"].shape[0]
    assert 0.5 * true_text_length <= lengths[0] <= 2 * true_text_length
