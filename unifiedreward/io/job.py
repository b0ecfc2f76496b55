"""The one resumable-job loop: items in, one JSONL record per item out, safe to kill and run again.

:func:`run_resumable` is what every long-running command of the package uses (the judge CLI, the benchmark runner,
video QA, pair building). Its guarantees:

* **Crash safety.** Items are processed in chunks; each chunk's records are appended with one write and ``fsync``
  (:func:`~unifiedreward.io.files.append_jsonl`). A killed job loses at most the chunk in flight, plus possibly an
  incomplete last line, which the next run drops (with a warning) and redoes.
* **Resume.** The next run reads the output, skips items whose records are there and processes the rest in item
  order. Records hold what ``process`` returns, so if ``process`` is deterministic per item, an interrupted and
  resumed job writes the same bytes as an uninterrupted one.
* **Safety of the output.** An output holding an id twice or an id that is not among the items is refused
  (:class:`~unifiedreward.errors.DataError`: wrong output, input or shard), and with ``settings`` a resumed job whose
  settings changed is refused (:class:`~unifiedreward.errors.SettingsError`); ``overwrite=True`` starts over.
* **Prefetch.** With ``load``, the items of chunk ``i + 1`` are loaded in a thread pool while chunk ``i`` is
  processed (and chunk 0 is loaded while ``setup`` runs, e.g. while the model loads).
"""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from unifiedreward.errors import DataError
from unifiedreward.io.files import append_jsonl, read_jsonl, write_jsonl_atomic
from unifiedreward.io.keys import id_key
from unifiedreward.io.settings import check_settings, settings_path

logger = logging.getLogger(__name__)

__all__ = ["JobStats", "run_resumable"]

T = TypeVar("T")
L = TypeVar("L")


@dataclass
class JobStats:
    """What one :func:`run_resumable` call did.

    Attributes:
        total: items given.
        done_before: items whose records were already in the output (and kept).
        processed: records written by this call.
        failed: records written by this call for which ``is_failed`` is true (0 without ``is_failed``).
        retried: failed records dropped from the output to be redone (``retry_failed``).
        seconds: wall time of the processing loop (``setup`` and reading the output not included).
    """

    total: int
    done_before: int
    processed: int
    failed: int
    retried: int
    seconds: float


def _default_record_key(record: dict[str, Any]) -> str:
    return id_key(record["id"])


def _existing_records(
    output: Path, wanted: set[str], record_key: Callable[[dict[str, Any]], str]
) -> list[tuple[str, dict[str, Any]]]:
    """The output's records with their keys (a truncated last line repaired); refuses foreign or repeated ids."""
    seen: set[str] = set()
    existing: list[tuple[str, dict[str, Any]]] = []
    for number, record in enumerate(read_jsonl(output, repair=True, require_id=False), 1):
        try:
            key = record_key(record)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"record #{number} has no id ({exc!r}): not a file this job wrote", path=output) from exc
        if key in seen:
            raise DataError(f"holds id {key!r} twice: not a file this job wrote (use --overwrite)", path=output)
        if key not in wanted:
            raise DataError(
                f"holds id {key!r}, which is not among the {len(wanted)} items of this run: wrong --output, --input "
                "or --shard? (use --overwrite to start over)",
                path=output,
            )
        seen.add(key)
        existing.append((key, record))
    return existing


class _Prefetcher(Generic[T, L]):
    """Loads the items of a chunk in a thread pool, one chunk ahead of the consumer."""

    def __init__(self, load: Callable[[T], L] | None, num_workers: int):
        self.load = load
        self.pool = ThreadPoolExecutor(num_workers, thread_name_prefix="load") if load and num_workers > 0 else None

    def submit(self, chunk: Sequence[T]) -> list[Future] | None:
        if self.pool is None:
            return None
        return [self.pool.submit(self.load, item) for item in chunk]  # type: ignore[arg-type]

    def result(self, chunk: Sequence[T], futures: list[Future] | None) -> list[Any]:
        if futures is not None:
            return [future.result() for future in futures]
        if self.load is None:
            return [None] * len(chunk)
        return [self.load(item) for item in chunk]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def _check_chunk(records: Any, chunk: Sequence[T], key: Callable[[T], str], record_key: Callable) -> None:
    if not isinstance(records, list) or len(records) != len(chunk):
        got = len(records) if isinstance(records, list) else type(records).__name__
        raise ValueError(f"process returned {got} record(s) for a chunk of {len(chunk)} item(s)")
    for item, record in zip(chunk, records, strict=True):
        if record_key(record) != key(item):
            raise ValueError(f"process returned a record for id {record_key(record)!r} where {key(item)!r} was due")


def run_resumable(
    items: Sequence[T],
    *,
    key: Callable[[T], str],
    output: str | Path,
    process: Callable[[Sequence[T], Sequence[Any]], list[dict[str, Any]]],
    load: Callable[[T], L] | None = None,
    setup: Callable[[Sequence[T]], None] | None = None,
    chunk_size: int = 64,
    num_workers: int = 2,
    settings: Mapping[str, Any] | None = None,
    settings_keys: Collection[str] | None = None,
    overwrite: bool = False,
    retry_failed: bool = False,
    is_failed: Callable[[dict[str, Any]], bool] | None = None,
    desc: str = "processing",
    progress: bool = True,
    record_key: Callable[[dict[str, Any]], str] = _default_record_key,
) -> JobStats:
    """Process ``items`` into ``output`` (JSONL, one record per item), resuming what an earlier run left there.

    Args:
        items: the job's items, in the order to process them (e.g. one shard of the input); keys must be unique.
        key: an item's key, normally ``id_key`` of its id.
        output: the JSONL output; created (with its folder) if missing, resumed if present.
        process: ``process(chunk, loaded) -> records``: one record per item of ``chunk``, in order, each with the
            item's key (``record_key(record) == key(item)``; checked). ``loaded[j]`` is ``load(chunk[j])``, or
            ``None`` without ``load``. An exception stops the job; the records of earlier chunks are kept.
        load: per-item loading (media decoding) run in a thread pool of ``num_workers`` threads, one chunk ahead of
            ``process``. It should return per-item problems as values (e.g. an error string) rather than raise:
            an exception stops the job like one from ``process``.
        setup: called once with the pending items before the first chunk is processed, only if some are pending
            (load the model here, so a finished job loads nothing); chunk 0 is already being loaded meanwhile.
        chunk_size: items per ``process`` call and per append; a killed job loses at most one chunk.
        num_workers: loader threads; ``0`` loads in the calling thread, without prefetch.
        settings: the settings that define the output, checked against ``<output>.settings.json``
            (:func:`~unifiedreward.io.settings.check_settings`); ``None``: no check.
        settings_keys: compare only these keys of ``settings`` (the others are stored for information); default:
            all of them.
        overwrite: delete the output and its settings file and start over.
        retry_failed: drop the output's records for which ``is_failed(record)`` is true (the file is rewritten
            atomically) and process their items again.
        is_failed: what counts as failed (for ``retry_failed`` and :attr:`JobStats.failed`).
        desc: label of the progress bar.
        progress: show a tqdm bar on stderr (its total is ``len(items)``, starting at the items already done).
        record_key: a record's key (default: ``id_key(record["id"])``).

    Returns:
        :class:`JobStats`. Records are in processing order (resumed items after earlier ones, retried ones last);
        reordering or merging is the caller's business (:func:`~unifiedreward.io.shards.merge_jsonl`).

    Raises:
        DataError: an unreadable output line (other than a truncated last one), an id twice in the output, an id in
            the output that is not among ``items``, or a key twice among ``items``.
        SettingsError: ``settings`` differ from the stored ones (and not ``overwrite``).
        ValueError: bad arguments, or ``process`` broke its contract.
    """
    if chunk_size < 1 or num_workers < 0:
        raise ValueError(f"need chunk_size >= 1 and num_workers >= 0, got {chunk_size} and {num_workers}")
    if retry_failed and is_failed is None:
        raise ValueError("retry_failed needs is_failed")
    output = Path(output)
    keys = [key(item) for item in items]
    wanted = set(keys)
    if len(wanted) != len(keys):
        duplicates = sorted(k for k, n in Counter(keys).items() if n > 1)[:10]
        raise DataError(f"the items hold keys more than once, e.g. {duplicates}")
    if overwrite:
        for stale in (output, settings_path(output)):
            if stale.exists():
                logger.info("overwrite: deleting %s", stale)
                stale.unlink()
    output.parent.mkdir(parents=True, exist_ok=True)
    stored = settings_path(output)
    resumed = output.exists() and output.stat().st_size > 0
    if settings is not None and resumed and stored.exists():
        check_settings(stored, settings, fresh=False, keys=settings_keys)  # before anything is touched

    existing = _existing_records(output, wanted, record_key)
    if settings is not None and not (resumed and stored.exists()):
        if resumed:
            logger.warning("%s has no settings file %s: cannot check the settings; storing this run's", output, stored)
        check_settings(stored, settings, fresh=True)  # written once the output is known to belong to these items
    retried = 0
    if retry_failed:
        kept = [(k, r) for k, r in existing if not is_failed(r)]  # type: ignore[misc]
        retried = len(existing) - len(kept)
        if retried:
            logger.info("%s: %d failed record(s) dropped, to be redone", output, retried)
            write_jsonl_atomic(output, [r for _, r in kept])
            existing = kept
    done = {k for k, _ in existing}
    pending = [item for item, k in zip(items, keys, strict=True) if k not in done]
    logger.info("%s: %d item(s), %d already done, %d to process", output, len(items), len(done), len(pending))
    stats = JobStats(len(items), len(done), 0, 0, retried, 0.0)
    if not pending:
        return stats
    _process_pending(pending, output, process, _Prefetcher(load, num_workers), setup, chunk_size, stats,
                     key=key, record_key=record_key, is_failed=is_failed, desc=desc, progress=progress)  # fmt: skip
    return stats


def _process_pending(
    pending: Sequence[T], output: Path, process: Callable, prefetcher: _Prefetcher, setup: Callable | None,
    chunk_size: int, stats: JobStats, *, key: Callable, record_key: Callable, is_failed: Callable | None, desc: str,
    progress: bool,
) -> None:  # fmt: skip
    """The chunk loop of :func:`run_resumable` (updates ``stats`` in place)."""
    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    chunks = [pending[i : i + chunk_size] for i in range(0, len(pending), chunk_size)]
    bar = None
    try:
        futures = prefetcher.submit(chunks[0])  # chunk 0 loads while setup runs
        if setup is not None:
            setup(pending)
        start = time.perf_counter()
        bar = tqdm(total=stats.total, initial=stats.done_before, desc=desc, unit="item", disable=not progress,
                   file=sys.stderr)  # fmt: skip
        with logging_redirect_tqdm(), output.open("a", encoding="utf-8") as handle:
            for number, chunk in enumerate(chunks):
                loaded = prefetcher.result(chunk, futures)
                futures = prefetcher.submit(chunks[number + 1]) if number + 1 < len(chunks) else None  # load ahead
                records = process(chunk, loaded)
                _check_chunk(records, chunk, key, record_key)
                append_jsonl(handle, records)
                stats.processed += len(records)
                if is_failed is not None:
                    stats.failed += sum(1 for record in records if is_failed(record))
                stats.seconds = time.perf_counter() - start
                bar.update(len(records))
    finally:
        if bar is not None:
            bar.close()
        prefetcher.close()
