"""The pre-encoded SFT sample cache (unifiedreward.data.cache): cached batches equal live ones, invalidation."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from unifiedreward.data import parse_record
from unifiedreward.data.cache import SampleCache, record_key
from unifiedreward.data.sft import MediaOptions, SFTCollator, SupervisedDataset
from unifiedreward.testing.media import make_frames, write_frame_folder, write_video
from unifiedreward.testing.tiny_models import build_tiny_processor

pytestmark = pytest.mark.smoke


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def processor():
    return build_tiny_processor("qwen2_5_vl")


@pytest.fixture
def media(tmp_path):
    root = tmp_path / "media"
    root.mkdir()
    rng = np.random.default_rng(0)
    for name, (h, w) in {"a.png": (56, 56), "b.png": (56, 84)}.items():
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / name)
    frames = make_frames(8, 64, 64)
    write_video(root / "clip.mp4", frames, fps=4)
    write_frame_folder(root / "frames", frames)
    return root


def _qa(i: int, prompt: str = "Is it good?", answer: str | None = None, **media_keys) -> dict:
    tag = "<video>\n" if "video" in media_keys else "<image>\n" * len(np.atleast_1d(media_keys.get("image", [])))
    return {
        "id": f"r{i}",
        **media_keys,
        "conversations": [
            {"from": "human", "value": tag + prompt},
            {"from": "gpt", "value": answer or f"Answer {i}."},
        ],
    }


def _records(media, items):
    return [parse_record(item, source="train.json", index=i, media_folder=media) for i, item in enumerate(items)]


ITEMS = [
    _qa(0, image="a.png"),
    _qa(1, image=["a.png", "b.png"]),
    _qa(2, video="clip.mp4"),
    _qa(3, video="frames"),
    _qa(4),
    _qa(5, image="missing.png"),  # media error: skipped
    _qa(6, answer="word " * 80),  # over-length: skipped
    _qa(7, image="b.png"),
]


def _dataset(records, processor, cache_dir=None, **kwargs):
    options = {"model_max_length": 96, "media": MediaOptions(frames_upbound=4), "max_bad_fraction": 1.0}
    return SupervisedDataset(records, processor, family="qwen", cache_dir=cache_dir, **(options | kwargs))


def _batches(dataset, size=3):
    collate = SFTCollator(dataset.pad_token_id)
    return [collate([dataset[i] for i in range(b, min(b + size, len(dataset)))]) for b in range(0, len(dataset), size)]


def _count_encodes(monkeypatch) -> list[int]:
    calls: list[int] = []
    original = SupervisedDataset.encode

    def counting(self, index):
        calls.append(index)
        return original(self, index)

    monkeypatch.setattr(SupervisedDataset, "encode", counting)
    return calls


def test_cached_batches_equal_live_batches_and_a_second_run_decodes_nothing(media, processor, tmp_path, monkeypatch):
    records = _records(media, ITEMS)
    live = _dataset(records, processor)
    expected = _batches(live)
    cold = _dataset(records, processor, tmp_path / "cache")
    assert len(cold.cache) == 0
    for batches in (_batches(cold), None):
        if batches is None:  # second run: a new dataset on the same folder, nothing may be decoded
            monkeypatch.setattr(SupervisedDataset, "encode", lambda self, i: pytest.fail(f"sample {i} was encoded"))
            warm = _dataset(records, processor, tmp_path / "cache")
            assert len(warm.cache) == len(ITEMS) and warm.cache.skipped() == 2
            batches = _batches(warm)
            assert warm.cache.misses == 0 and warm.cache.writes == 0 and warm.cache.hits >= len(ITEMS)
            assert warm.counts() == live.counts() and warm.dropped_ids() == live.dropped_ids() == ["r5", "r6"]
        assert len(batches) == len(expected)
        for got, want in zip(batches, expected, strict=True):
            assert list(got) == list(want)  # same keys, same order
            for key in want:
                assert got[key].dtype == want[key].dtype and torch.equal(got[key], want[key]), key
    assert "pixel_values_videos" in expected[0] and "pixel_values" in expected[0]


def test_dataloader_workers_write_their_own_shards(media, processor, tmp_path):
    records = _records(media, ITEMS[:5] * 2)
    dataset = _dataset(records, processor, tmp_path / "cache")
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=2, collate_fn=SFTCollator(0))
    assert len(list(loader)) == 5
    folder = dataset.cache.folder
    assert len(list(folder.glob("*.idx"))) == 2 and len(list(folder.glob("*.bin"))) == 2
    assert len(SampleCache(tmp_path / "cache", dataset.cache.fingerprint)) == 5  # 5 distinct samples


@pytest.mark.parametrize("change", ["record_text", "media_mtime", "media_content"])
def test_a_changed_record_or_media_file_is_encoded_again(change, media, processor, tmp_path, monkeypatch):
    items = [_qa(0, image="a.png"), _qa(1, image="b.png"), _qa(2)]
    _batches(_dataset(_records(media, items), processor, tmp_path / "cache"))
    if change == "record_text":
        items[2] = _qa(2, prompt="Is it better?")
    elif change == "media_mtime":
        stat = os.stat(media / "b.png")
        os.utime(media / "b.png", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    else:
        Image.new("RGB", (84, 56), (1, 2, 3)).save(media / "b.png")
    calls = _count_encodes(monkeypatch)
    _batches(_dataset(_records(media, items), processor, tmp_path / "cache"))
    assert calls == [2 if change == "record_text" else 1]


@pytest.mark.parametrize("change", ["processor", "model_max_length", "media_options"])
def test_settings_that_change_samples_start_a_new_cache(change, media, processor, tmp_path, monkeypatch):
    records = _records(media, ITEMS[:2])
    first = _dataset(records, processor, tmp_path / "cache")
    _batches(first)
    kwargs: dict = {}
    other = processor
    if change == "processor":
        other = build_tiny_processor("qwen2_5_vl")
        other.chat_template = "{# another template #}" + processor.chat_template
    elif change == "model_max_length":
        kwargs["model_max_length"] = 97
    else:
        kwargs["media"] = MediaOptions(frames_upbound=4, image_max_pixels=28 * 28 * 4)
    calls = _count_encodes(monkeypatch)
    second = _dataset(records, other, tmp_path / "cache", **kwargs)
    assert second.cache.folder != first.cache.folder and len(second.cache) == 0
    _batches(second)
    assert calls == [0, 1]
    # unchanged settings (a processor loaded again) find the first folder
    assert _dataset(records, build_tiny_processor("qwen2_5_vl"), tmp_path / "cache").cache.folder == first.cache.folder


def test_a_cached_media_error_is_retried_once_the_file_exists(media, processor, tmp_path, monkeypatch):
    records = _records(media, [_qa(0, image="late.png"), _qa(1)])
    key_before = record_key(records[0])
    dataset = _dataset(records, processor, tmp_path / "cache")
    _batches(dataset)
    assert dataset.counts()["media"] == 1
    Image.new("RGB", (56, 56), (9, 9, 9)).save(media / "late.png")
    assert record_key(records[0]) != key_before
    calls = _count_encodes(monkeypatch)
    again = _dataset(records, processor, tmp_path / "cache")
    _batches(again)
    assert calls == [0] and again.counts()["dropped"] == 0


def test_torn_index_line_and_missing_data_are_ignored(media, processor, tmp_path, monkeypatch):
    records = _records(media, ITEMS[:2])
    dataset = _dataset(records, processor, tmp_path / "cache")
    expected = _batches(dataset)
    dataset.cache.close()
    (index,) = dataset.cache.folder.glob("*.idx")
    with open(index, "ab") as handle:  # a writer killed mid-line
        handle.write(json.dumps({"k": "x" * 64, "o": 0, "n": 5, "keys": []})[:20].encode())
    (data,) = dataset.cache.folder.glob("*.bin")
    data.write_bytes(data.read_bytes()[:100])  # and a truncated data file
    calls = _count_encodes(monkeypatch)
    again = _dataset(records, processor, tmp_path / "cache")
    assert len(again.cache) == 0  # both entries point past the truncated data
    batches = _batches(again)
    assert calls == [0, 1]  # encoded again, same tensors
    assert all(torch.equal(got[k], want[k]) for got, want in zip(batches, expected, strict=True) for k in want)
    assert len(_dataset(records, processor, tmp_path / "cache").cache) == 2  # the new entries are found
