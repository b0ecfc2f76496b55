"""A pre-encoded SFT sample cache: each sample's token ids, labels and media tensors are computed once, on disk.

:class:`~unifiedreward.data.sft.SupervisedDataset` decodes media, renders the chat template and runs the processor
for every sample of every epoch. With a :class:`SampleCache` it does that once per distinct sample; later epochs
and later runs (other seeds, other mixtures that share records, a resumed run) read the encoded tensors back.

**Layout.** ``root/v<format>-<fingerprint>/`` holds ``fingerprint.json`` (what the folder name hashes) and, per
writing process, a shard pair ``<writer>.bin`` (concatenated safetensors blobs, one per sample) and
``<writer>.idx`` (one JSON line per sample: ``{"k": key, "o": offset, "n": bytes, "keys": [tensor names]}``, or
``{"k": key, "skip": kind, "msg": reason}`` for a sample that cannot be trained on). Every process (DataLoader
worker, rank, node) appends to its own shard, so no locks are needed; an index line is written after its data,
and a torn last line (a killed process) is ignored. A sample written twice (two ranks) is read from either copy.

**Keys.** Two levels, so that a stale sample can never be read:

* the folder fingerprint (:func:`dataset_fingerprint`): the format version, the processor
  (:func:`processor_fingerprint`: image/video processor configs, tokenizer vocabulary and merges, chat template),
  the model family, ``model_max_length``, the media decoding options, the system prompt and the end-of-turn token;
  changing any of them starts a new folder (old folders stay until deleted);
* the per-sample key (:func:`record_key`): the record's content (roles, texts, media paths in order) and, for each
  media path, its size and modification time (every file of a frame folder). Editing a record file or replacing a
  media file changes the key of exactly the samples concerned; a different sampling of the mixture reuses every
  sample it shares with earlier runs. A missing file is part of the key too, so a media error is cached as a skip
  and retried once the file appears.

Tensors are stored exactly (same dtype and shape as the live path), e.g. ``pixel_values`` in float32: about
200 KiB for a sample with two 84x84 images (Qwen2-VL, 72 patches x 1176 values).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "CACHE_FORMAT",
    "CachedSkip",
    "SampleCache",
    "dataset_fingerprint",
    "processor_fingerprint",
    "record_key",
]

logger = logging.getLogger(__name__)

#: Version of the on-disk layout and of the encoding; bump it when either changes.
CACHE_FORMAT = 1
# A process re-reads the other writers' index files on a miss at most this often (seconds).
_REFRESH_INTERVAL = 1.0


@dataclass(frozen=True)
class CachedSkip:
    """A sample recorded as unusable: ``kind`` is ``"media"``, ``"over-length"`` or ``"invalid"``."""

    kind: str
    message: str


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def processor_fingerprint(processor: Any) -> str:
    """SHA-256 of what the processor contributes to a sample.

    Covers ``processor.to_dict()`` (image and video processor settings), the chat template and the tokenizer
    (its full ``tokenizers`` serialisation when it is a fast tokenizer: vocabulary, merges, added and special
    tokens; else its vocabulary). The folder the processor was loaded from is not part of it.
    """
    to_dict = getattr(processor, "to_dict", None)
    config = to_dict() if callable(to_dict) else {}
    tokenizer = getattr(processor, "tokenizer", processor)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    vocabulary = backend.to_str() if backend is not None else sorted(tokenizer.get_vocab().items())
    template = getattr(processor, "chat_template", None) or getattr(tokenizer, "chat_template", None)
    return _digest({"config": config, "chat_template": template, "tokenizer": vocabulary})


def dataset_fingerprint(
    processor: Any,
    *,
    family: str,
    model_max_length: int | None,
    media: Any,
    system_prompt: str | None,
    end_of_turn: str,
) -> dict[str, Any]:
    """Everything besides the record itself that determines an encoded sample (see the module docstring).

    Args:
        media: a :class:`~unifiedreward.data.sft.MediaOptions` (any dataclass or mapping).
    """
    from dataclasses import asdict, is_dataclass

    return {
        "format": CACHE_FORMAT,
        "processor": processor_fingerprint(processor),
        "family": family,
        "model_max_length": model_max_length,
        "media": asdict(media) if is_dataclass(media) else dict(media),
        "system_prompt": system_prompt,
        "end_of_turn": end_of_turn,
    }


def _file_stat(path: str) -> list[Any]:
    try:
        stat = os.stat(path)
    except OSError:
        return [path, "missing"]
    if not os.path.isdir(path):
        return [path, stat.st_size, stat.st_mtime_ns]
    return [path, "dir", *(_file_stat(os.path.join(path, name)) for name in sorted(os.listdir(path)))]


def record_key(record: Any) -> str:
    """SHA-256 of a record's content and of its media files' sizes and modification times.

    The record's id, source and index are not part of it (they only name the record in logs).
    """
    turns = [(turn.role, [part.to_dict() for part in turn.content]) for turn in record.turns]
    files = [
        _file_stat(path)
        for part in record.media_parts()
        for path in ([part.path] if isinstance(part.path, str) else list(part.path))
    ]
    return _digest({"turns": turns, "media": files})


class SampleCache:
    """Content-addressed store of encoded SFT samples (see the module docstring).

    Args:
        root: the cache folder (shared by runs; one sub-folder per fingerprint).
        fingerprint: what the sub-folder's name hashes (:func:`dataset_fingerprint`).

    Attributes:
        folder: the sub-folder of this fingerprint.
        hits, misses, writes: this process's counts.
    """

    def __init__(self, root: str | os.PathLike[str], fingerprint: Mapping[str, Any]):
        self.fingerprint = dict(fingerprint)
        self.folder = Path(root) / f"v{CACHE_FORMAT}-{_digest(self.fingerprint)[:20]}"
        self.folder.mkdir(parents=True, exist_ok=True)
        marker = self.folder / "fingerprint.json"
        if not marker.exists():
            tmp = marker.with_name(f".{marker.name}.{os.getpid()}.{secrets.token_hex(4)}")
            tmp.write_text(json.dumps(self.fingerprint, indent=1, sort_keys=True, default=str) + "\n")
            os.replace(tmp, marker)
        self._index: dict[str, tuple[str, int, int, list[str]] | CachedSkip] = {}
        self._consumed: dict[str, int] = {}  # index file name -> bytes already read
        self._last_refresh = 0.0
        self._writer: tuple[int, str, Any, Any] | None = None  # (pid, name, data file, index file)
        self.hits = self.misses = self.writes = 0
        self.refresh()

    def __len__(self) -> int:
        return len(self._index)

    def __getstate__(self) -> dict[str, Any]:  # DataLoader workers under spawn: no open files
        state = self.__dict__.copy()
        state["_writer"] = None
        return state

    def skipped(self) -> int:
        """Number of samples recorded as unusable."""
        return sum(isinstance(entry, CachedSkip) for entry in self._index.values())

    # ------------------------------------------------------------------------------------------------- reading
    def refresh(self) -> int:
        """Read the index lines written since the last call (by any process); returns how many were new."""
        self._last_refresh = time.monotonic()
        added = 0
        for path in sorted(self.folder.glob("*.idx")):
            done = self._consumed.get(path.name, 0)
            try:
                if path.stat().st_size <= done:
                    continue
                with open(path, "rb") as handle:
                    handle.seek(done)
                    chunk = handle.read()
            except OSError:
                continue
            end = chunk.rfind(b"\n") + 1  # a torn last line is read once it is complete
            data = path.with_suffix(".bin")
            size = data.stat().st_size if data.exists() else 0
            for line in chunk[:end].splitlines():
                added += self._add_line(data.name, line, data_size=size)
            self._consumed[path.name] = done + end
        return added

    def _add_line(self, data_name: str, line: bytes, *, data_size: int | None = None) -> int:
        """Index one line; an entry whose data lies past ``data_size`` (a truncated shard) is ignored."""
        try:
            entry = json.loads(line)
            key = entry["k"]
            value: Any = (
                CachedSkip(entry["skip"], entry.get("msg", ""))
                if "skip" in entry
                else (data_name, int(entry["o"]), int(entry["n"]), list(entry["keys"]))
            )
        except (ValueError, KeyError, TypeError):
            logger.warning("sample cache %s: ignoring an unreadable index line in %s", self.folder, data_name)
            return 0
        if key in self._index:
            return 0
        if data_size is not None and not isinstance(value, CachedSkip) and value[1] + value[2] > data_size:
            return 0  # written later (re-read at the next refresh) or lost with a killed writer
        self._index[key] = value
        return 1

    def get(self, key: str) -> dict[str, torch.Tensor] | CachedSkip | None:
        """The cached sample of ``key`` (tensors in their original order), a :class:`CachedSkip`, or ``None``."""
        entry = self._index.get(key)
        if entry is None and time.monotonic() - self._last_refresh >= _REFRESH_INTERVAL and self.refresh():
            entry = self._index.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        if isinstance(entry, CachedSkip):
            return entry
        return self._read(key, *entry)

    def _read(
        self, key: str, data_name: str, offset: int, size: int, keys: list[str]
    ) -> dict[str, torch.Tensor] | None:
        from safetensors import SafetensorError
        from safetensors.torch import load

        try:
            with open(self.folder / data_name, "rb") as handle:
                handle.seek(offset)
                blob = handle.read(size)
            if len(blob) != size:
                raise OSError(f"{data_name} is shorter than its index says")
            tensors = load(blob)
            return {name: tensors[name] for name in keys}
        except (OSError, SafetensorError, KeyError) as error:
            logger.warning("sample cache %s: unreadable entry %s (%s); encoding it again", self.folder, key, error)
            del self._index[key]
            self.hits -= 1
            self.misses += 1
            return None

    # ------------------------------------------------------------------------------------------------- writing
    def _handles(self) -> tuple[str, Any, Any]:
        pid = os.getpid()
        if self._writer is None or self._writer[0] != pid:  # first write, or a forked DataLoader worker
            name = f"{socket.gethostname()}-{pid}-{secrets.token_hex(4)}"
            data = open(self.folder / f"{name}.bin", "ab")  # noqa: SIM115 - kept open for the process's lifetime
            index = open(self.folder / f"{name}.idx", "ab")  # noqa: SIM115
            self._writer = (pid, name, data, index)
        _, name, data, index = self._writer
        return f"{name}.bin", data, index

    def _append(self, entry: dict[str, Any], blob: bytes | None = None) -> None:
        data_name, data, index = self._handles()
        if blob is not None:
            entry = {**entry, "o": data.tell(), "n": len(blob)}
            data.write(blob)
            data.flush()  # the data reaches the file before the index line that points at it
        line = json.dumps(entry, separators=(",", ":")).encode("utf-8") + b"\n"
        index.write(line)
        index.flush()
        self._consumed[Path(index.name).name] = index.tell()
        self._add_line(data_name, line)
        self.writes += 1

    def put(self, key: str, sample: Mapping[str, torch.Tensor]) -> None:
        """Store an encoded sample (a dict of tensors)."""
        from safetensors.torch import save

        tensors = {name: value.detach().cpu().contiguous() for name, value in sample.items()}
        self._append({"k": key, "keys": list(tensors)}, save(tensors))

    def put_skip(self, key: str, kind: str, message: str) -> None:
        """Record that the sample of ``key`` cannot be trained on (``kind``: media, over-length, invalid)."""
        self._append({"k": key, "skip": kind, "msg": message})

    def close(self) -> None:
        """Close this process's shard files (reading still works)."""
        if self._writer is not None and self._writer[0] == os.getpid():
            self._writer[2].close()
            self._writer[3].close()
        self._writer = None
