"""The resumable-job engine ``unifiedreward.io``: files, keys, shards, settings and ``run_resumable``.

Jobs here process dict items with a deterministic ``process`` (a record depends only on its item), so any two runs
over the same items must write the same bytes, however they were chunked, killed, resumed or sharded.
"""

from __future__ import annotations

import json
import logging
import os
import threading

import pytest

from unifiedreward.errors import DataError, SettingsError, UnifiedRewardError
from unifiedreward.io import (
    JobStats,
    append_jsonl,
    check_settings,
    id_key,
    merge_jsonl,
    parse_shard,
    read_json,
    read_jsonl,
    run_resumable,
    select_shard,
    settings_path,
    shard_path,
    to_jsonable,
    write_json_atomic,
    write_jsonl_atomic,
)

pytestmark = pytest.mark.unit

DEADLOCK_GUARD_S = 30  # only bounds a wait that must succeed at once; no assertion depends on time


def make_items(n: int) -> list[dict]:
    items = [{"id": f"x{i}", "value": i} for i in range(n)]
    if n > 3:
        items[3]["id"] = 3  # integer ids work too
    return items


def item_key(item: dict) -> str:
    return id_key(item["id"])


def record_for(item: dict, loaded=None) -> dict:
    return {"id": item["id"], "square": item["value"] ** 2, "text": f"é{item['value']}", "loaded": loaded}


class Processor:
    """A deterministic ``process``; raises in chunk ``fail_in_chunk`` (1-based), as a killed run stops."""

    def __init__(self, fail_in_chunk: int | None = None, failed_values: tuple[int, ...] = ()):
        self.fail_in_chunk = fail_in_chunk
        self.failed_values = failed_values
        self.chunks: list[list] = []

    def __call__(self, chunk, loaded):
        self.chunks.append([item["id"] for item in chunk])
        if self.fail_in_chunk is not None and len(self.chunks) >= self.fail_in_chunk:
            raise RuntimeError("simulated kill")
        records = [record_for(item, value) for item, value in zip(chunk, loaded, strict=True)]
        for record, item in zip(records, chunk, strict=True):
            record["status"] = "failed" if item["value"] in self.failed_values else "ok"
        return records

    @property
    def seen(self) -> list:
        return [i for chunk in self.chunks for i in chunk]


def run(items, output, process, **kwargs) -> JobStats:
    kwargs.setdefault("chunk_size", 3)
    kwargs.setdefault("progress", False)
    return run_resumable(items, key=item_key, output=output, process=process, **kwargs)


def is_failed(record: dict) -> bool:
    return record["status"] == "failed"


# ------------------------------------------------------------------------------------------------------- files
def test_read_jsonl_missing_file_and_round_trip(tmp_path):
    path = tmp_path / "a.jsonl"
    assert read_jsonl(path) == []
    records = [{"id": 1, "t": "é"}, {"id": "b", "nested": {"x": [1, 2]}}]
    write_jsonl_atomic(path, records)
    assert read_jsonl(path) == records
    assert path.read_text(encoding="utf-8").count("\n") == 2 and "é" in path.read_text(encoding="utf-8")
    assert [p.name for p in tmp_path.iterdir()] == ["a.jsonl"]  # no temporary file left behind


def test_truncated_last_line_is_an_error_unless_repaired(tmp_path, caplog):
    path = tmp_path / "out.jsonl"
    write_jsonl_atomic(path, [{"id": 1}, {"id": 2}, {"id": 3}])
    text = path.read_text()
    path.write_text(text[: len(text) - 5])  # killed while writing line 3
    with pytest.raises(DataError, match=r"out\.jsonl:3: .*interrupted write"):
        read_jsonl(path)
    assert path.read_text() == text[: len(text) - 5]  # not touched without repair
    with caplog.at_level(logging.WARNING, logger="unifiedreward.io.files"):
        assert read_jsonl(path, repair=True) == [{"id": 1}, {"id": 2}]
    assert "line 3 is incomplete" in caplog.text
    assert path.read_text() == '{"id": 1}\n{"id": 2}\n'


def test_complete_last_line_without_newline_gets_one(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text('{"id": 1}\n\n{"id": 2}')
    assert read_jsonl(path) == [{"id": 1}, {"id": 2}] and path.read_text() == '{"id": 1}\n\n{"id": 2}'
    assert read_jsonl(path, repair=True) == [{"id": 1}, {"id": 2}]
    assert path.read_text() == '{"id": 1}\n{"id": 2}\n'


@pytest.mark.parametrize("bad", ['{"id": 2', "[1, 2]", '{"no_id": 1}', "\xff"])
def test_damaged_middle_line_names_file_and_line_even_with_repair(tmp_path, bad):
    path = tmp_path / "out.jsonl"
    path.write_bytes(b'{"id": 1}\n\n' + bad.encode("latin-1") + b'\n{"id": 3}\n')
    before = path.read_bytes()
    with pytest.raises(DataError, match=r"out\.jsonl:3: not a JSON object with an 'id'") as caught:
        read_jsonl(path, repair=True)
    assert caught.value.path.endswith("out.jsonl:3")
    assert path.read_bytes() == before


def test_require_id_false_accepts_objects_without_id(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n{"b": 2}\n')
    assert read_jsonl(path, require_id=False) == [{"a": 1}, {"b": 2}]


def test_writes_are_fsynced(tmp_path, monkeypatch):
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    with (tmp_path / "a.jsonl").open("a", encoding="utf-8") as handle:
        append_jsonl(handle, [{"id": 1}, {"id": 2}])
        assert synced == [handle.fileno()]
    synced.clear()
    write_jsonl_atomic(tmp_path / "b.jsonl", [{"id": 1}])
    assert synced  # the temporary file (and the folder, where possible)
    synced.clear()
    write_json_atomic(tmp_path / "c.json", {"k": [1, 2]})
    assert synced
    assert read_json(tmp_path / "c.json") == {"k": [1, 2]}
    assert (tmp_path / "a.jsonl").read_text() == '{"id": 1}\n{"id": 2}\n'


def test_read_json_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.json: settings file does not exist"):
        read_json(tmp_path / "nope.json", what="settings file")
    (tmp_path / "bad.json").write_text('{"a": 1,')
    with pytest.raises(DataError, match=r"bad\.json: file is not valid JSON"):
        read_json(tmp_path / "bad.json")


def test_to_jsonable_and_id_key():
    from unifiedreward.protocol import Verdict

    assert to_jsonable({Verdict.FIRST: (1, float("nan")), "s": {2}}) == {"first": [1, None], "s": [2]}
    assert id_key(3) == id_key("3") == "3"


def test_errors_hierarchy():
    from unifiedreward.data import DataError as RecordsDataError

    assert RecordsDataError is DataError and issubclass(SettingsError, DataError)
    assert issubclass(DataError, UnifiedRewardError)
    assert str(DataError("bad", path="f.jsonl", record_id="a")) == "f.jsonl: record 'a': bad"


# ------------------------------------------------------------------------------------------------------ shards
def test_parse_select_and_name_shards():
    assert parse_shard("0/4") == (0, 4) and parse_shard(" 3 / 4 ") == (3, 4) and parse_shard(None) is None
    for bad in ("4/4", "1/0", "a/b", "1", "-1/2"):
        with pytest.raises(ValueError):
            parse_shard(bad)
    items = list(range(11))
    shards = [select_shard(items, i, 4) for i in range(4)]
    assert shards[1] == [1, 5, 9] and sorted(i for shard in shards for i in shard) == items
    with pytest.raises(ValueError):
        select_shard(items, 4, 4)
    assert shard_path("d/out.jsonl", (0, 2)).as_posix() == "d/out.shard-0-of-2.jsonl"
    assert shard_path("d/preds", "1/3").as_posix() == "d/preds.shard-1-of-3"
    assert shard_path("d/out.jsonl", None).as_posix() == "d/out.jsonl"


def test_merge_jsonl_refuses_duplicates_unknown_and_missing(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write_jsonl_atomic(a, [{"id": "c"}, {"id": 1}])
    write_jsonl_atomic(b, [{"id": "b"}])
    order = ["1", "b", "c", "d"]
    merged = tmp_path / "m.jsonl"
    with pytest.raises(DataError, match=r"1 of 4 id\(s\) are in none of the files, e\.g\. \['d'\]"):
        merge_jsonl([a, b], merged, order=order)
    summary = merge_jsonl([a, b], merged, order=order, allow_missing=True)
    assert read_jsonl(merged) == [{"id": 1}, {"id": "b"}, {"id": "c"}]
    assert summary == {"merged_files": [str(a), str(b)], "records": 3, "missing": 1, "missing_ids": ["d"]}
    with pytest.raises(DataError, match=r"id 'b' is already in .*b\.jsonl"):
        merge_jsonl([a, b, b], tmp_path / "dup.jsonl", order=order)
    with pytest.raises(DataError, match="id 'c' is not among the expected ids"):
        merge_jsonl([a, b], tmp_path / "foreign.jsonl", order=["1", "b"])
    with pytest.raises(DataError, match="does not exist"):
        merge_jsonl([a, tmp_path / "nope.jsonl"], tmp_path / "x.jsonl", order=order)
    with pytest.raises(ValueError, match="also one of the files"):
        merge_jsonl([a, b], a, order=order)
    assert not any((tmp_path / name).exists() for name in ("dup.jsonl", "foreign.jsonl", "x.jsonl"))


# ---------------------------------------------------------------------------------------------------- settings
def test_check_settings_lists_changed_keys(tmp_path):
    path = settings_path(tmp_path / "out.jsonl")
    assert path.name == "out.jsonl.settings.json"
    settings = {"model": "a", "order": "random", "frames": (8, 4), "seed": 0}
    check_settings(path, settings, fresh=False)  # first run: written
    assert read_json(path) == {"frames": [8, 4], "model": "a", "order": "random", "seed": 0}
    check_settings(path, settings, fresh=False)  # same settings (tuples compare as the lists stored)
    changed = {"model": "b", "order": "random", "frames": (8, 4), "extra": 1}
    with pytest.raises(SettingsError) as caught:
        check_settings(path, changed, fresh=False)
    message = str(caught.value)
    assert "model: 'a' -> 'b'" in message and "seed: 0 -> '<absent>'" in message
    assert "extra: '<absent>' -> 1" in message and "--overwrite" in message and "order" not in message
    assert caught.value.changed == {"extra": ("<absent>", 1), "model": ("a", "b"), "seed": (0, "<absent>")}
    assert read_json(path)["model"] == "a"  # untouched
    check_settings(path, changed, fresh=True)
    assert read_json(path)["model"] == "b"
    # only the listed keys are compared; other keys are updated silently
    check_settings(path, {**changed, "extra": 2}, fresh=False, keys=["model", "order"])
    assert read_json(path)["extra"] == 2


# -------------------------------------------------------------------------------------------- run_resumable
def test_killed_after_k_chunks_then_resumed_is_byte_identical(tmp_path):
    items = make_items(10)
    reference = tmp_path / "reference.jsonl"
    stats = run(items, reference, Processor())
    assert stats == JobStats(total=10, done_before=0, processed=10, failed=0, retried=0, seconds=stats.seconds)
    assert [r["id"] for r in read_jsonl(reference)] == [item["id"] for item in items]

    for k in (1, 2, 4):  # killed in the first, the second and the last chunk (3 + 3 + 3 + 1 items)
        output = tmp_path / f"killed{k}.jsonl"
        with pytest.raises(RuntimeError, match="simulated kill"):
            run(items, output, Processor(fail_in_chunk=k))
        assert len(read_jsonl(output)) == 3 * (k - 1)  # every finished chunk survived
        processor = Processor()
        stats = run(items, output, processor, chunk_size=4)  # another chunking: same bytes
        assert (stats.done_before, stats.processed) == (3 * (k - 1), 10 - 3 * (k - 1))
        assert processor.seen == [item["id"] for item in items[3 * (k - 1) :]]
        assert output.read_bytes() == reference.read_bytes()

    # a finished job does nothing
    processor = Processor()
    stats = run(items, reference, processor, setup=lambda pending: pytest.fail("setup of a finished job"))
    assert (stats.done_before, stats.processed, processor.chunks) == (10, 0, [])


def test_truncated_last_line_is_repaired_and_the_item_redone(tmp_path, caplog):
    items = make_items(5)
    reference = tmp_path / "reference.jsonl"
    run(items, reference, Processor())
    output = tmp_path / "out.jsonl"
    data = reference.read_bytes()
    output.write_bytes(data[: data.rindex(b"\n", 0, len(data) - 1) + 10])  # line 5 cut after 9 bytes
    processor = Processor()
    with caplog.at_level(logging.WARNING, logger="unifiedreward.io.files"):
        stats = run(items, output, processor)
    assert "line 5 is incomplete" in caplog.text
    assert processor.seen == ["x4"] and (stats.done_before, stats.processed) == (4, 1)
    assert output.read_bytes() == data


def test_corrupt_middle_line_is_refused(tmp_path):
    items = make_items(5)
    output = tmp_path / "out.jsonl"
    run(items, output, Processor())
    lines = output.read_text().splitlines(keepends=True)
    lines[1] = lines[1][:10] + "\n"
    output.write_text("".join(lines))
    with pytest.raises(DataError, match=r"out\.jsonl:2: not a JSON object"):
        run(items, output, Processor(fail_in_chunk=1))


def test_duplicate_and_foreign_ids_are_refused(tmp_path):
    items = make_items(6)
    output = tmp_path / "out.jsonl"
    write_jsonl_atomic(output, [record_for(items[0]), record_for(items[1]), record_for(items[0])])
    with pytest.raises(DataError, match="holds id 'x0' twice"):
        run(items, output, Processor(fail_in_chunk=1))
    write_jsonl_atomic(output, [record_for(items[0]), {"id": "elsewhere"}])
    with pytest.raises(DataError, match=r"holds id 'elsewhere', which is not among the 6 items .*--overwrite"):
        run(items, output, Processor(fail_in_chunk=1))
    # e.g. the output of shard 0 resumed as shard 1
    write_jsonl_atomic(output, [record_for(item) for item in select_shard(items, 0, 2)])
    with pytest.raises(DataError, match="holds id 'x0', which is not among the 3 items"):
        run(select_shard(items, 1, 2), output, Processor(fail_in_chunk=1))
    stats = run(select_shard(items, 1, 2), output, Processor(), overwrite=True)
    assert stats.done_before == 0 and [r["id"] for r in read_jsonl(output)] == ["x1", 3, "x5"]
    with pytest.raises(DataError, match="more than once"):
        run([items[0], {"id": "x0", "value": 9}], tmp_path / "dup_items.jsonl", Processor())


def test_two_shards_merged_equal_one_process(tmp_path):
    items = make_items(11)
    single = tmp_path / "single.jsonl"
    run(items, single, Processor())
    base = tmp_path / "out.jsonl"
    paths = []
    for index in range(2):
        path = shard_path(base, (index, 2))
        run(select_shard(items, index, 2), path, Processor(), chunk_size=2)
        paths.append(path)
    merged = tmp_path / "merged.jsonl"
    merge_jsonl(paths, merged, order=[item_key(item) for item in items])
    assert merged.read_bytes() == single.read_bytes()


def test_settings_mismatch_is_refused_and_overwrite_starts_over(tmp_path):
    items = make_items(4)
    output = tmp_path / "out.jsonl"
    settings = {"model": "m1", "order": "random", "input": "in.jsonl"}
    with pytest.raises(RuntimeError):
        run(items, output, Processor(fail_in_chunk=2), settings=settings)
    before = output.read_bytes()
    with pytest.raises(SettingsError, match=r"model: 'm1' -> 'm2'") as caught:
        run(items, output, Processor(fail_in_chunk=1), settings={**settings, "model": "m2", "order": "both"})
    assert set(caught.value.changed) == {"model", "order"}
    assert output.read_bytes() == before  # nothing touched
    stats = run(items, output, Processor(), settings=settings)  # the same settings resume
    assert (stats.done_before, stats.processed) == (3, 1)
    processor = Processor()
    stats = run(items, output, processor, settings={**settings, "model": "m2"}, overwrite=True)
    assert (stats.done_before, stats.processed, len(processor.seen)) == (0, 4, 4)
    assert read_json(settings_path(output))["model"] == "m2"
    # an output that never got a record takes the new settings without complaint
    empty = tmp_path / "empty.jsonl"
    check_settings(settings_path(empty), {"model": "old"}, fresh=True)
    run(items, empty, Processor(), settings=settings)
    assert read_json(settings_path(empty)) == settings


def test_settings_file_is_written_only_for_an_accepted_output(tmp_path, caplog):
    items = make_items(4)
    output = tmp_path / "old.jsonl"  # an output of a version without settings files
    write_jsonl_atomic(output, [record_for(items[0]), {"id": "foreign"}])
    with pytest.raises(DataError, match="holds id 'foreign'"):
        run(items, output, Processor(), settings={"model": "m"})
    assert not settings_path(output).exists()
    write_jsonl_atomic(output, [record_for(items[0])])
    with caplog.at_level(logging.WARNING, logger="unifiedreward.io.job"):
        stats = run(items, output, Processor(), settings={"model": "m"})
    assert "cannot check the settings" in caplog.text and stats.done_before == 1
    assert read_json(settings_path(output)) == {"model": "m"}


def test_retry_failed_redoes_exactly_the_failed_records(tmp_path):
    items = make_items(7)
    output = tmp_path / "out.jsonl"
    stats = run(items, output, Processor(failed_values=(1, 4, 5)), is_failed=is_failed)
    assert stats.failed == 3
    stats = run(items, output, Processor(failed_values=(1, 4, 5)), is_failed=is_failed)  # no retry: nothing redone
    assert (stats.done_before, stats.processed) == (7, 0)
    processor = Processor(failed_values=(5,))
    stats = run(items, output, processor, retry_failed=True, is_failed=is_failed)
    assert processor.seen == ["x1", "x4", "x5"]
    assert (stats.retried, stats.done_before, stats.processed, stats.failed) == (3, 4, 3, 1)
    records = read_jsonl(output)
    assert [r["id"] for r in records] == ["x0", "x2", 3, "x6", "x1", "x4", "x5"]  # redone ones last
    assert [r["status"] for r in records].count("failed") == 1
    with pytest.raises(ValueError, match="needs is_failed"):
        run(items, output, Processor(), retry_failed=True)


def test_prefetch_loads_the_next_chunk_while_one_is_processed(tmp_path):
    """Processing chunk i blocks until an item of chunk i+1 has been loaded: only prefetch lets the job finish."""
    items = make_items(7)
    chunk_size = 2
    loaded_events = {item_key(item): threading.Event() for item in items}
    log: list[tuple[str, str]] = []
    lock = threading.Lock()

    def load(item):
        with lock:
            log.append(("load", item_key(item)))
        loaded_events[item_key(item)].set()
        return f"L{item['value']}"

    def setup(pending):
        assert loaded_events[item_key(pending[0])].wait(DEADLOCK_GUARD_S)  # chunk 0 loads while setup runs
        log.append(("setup", ""))

    def process(chunk, loaded):
        position = items.index(chunk[0])
        following = items[position + chunk_size : position + 2 * chunk_size]
        for item in following:
            assert loaded_events[item_key(item)].wait(DEADLOCK_GUARD_S), "next chunk not loaded while processing"
        with lock:
            log.append(("process", item_key(chunk[0])))
        return [record_for(item, value) for item, value in zip(chunk, loaded, strict=True)]

    output = tmp_path / "out.jsonl"
    run(items, output, process, load=load, setup=setup, chunk_size=chunk_size, num_workers=2)
    assert [r["loaded"] for r in read_jsonl(output)] == [f"L{i}" for i in range(7)]
    processed = [name for kind, name in log if kind == "process"]
    assert processed == ["x0", "x2", "x4", "x6"]


def test_without_workers_loading_is_inline_and_without_load_process_gets_none(tmp_path):
    threads: set[str] = set()

    def load(item):
        threads.add(threading.current_thread().name)
        return item["value"]

    output = tmp_path / "inline.jsonl"
    run(make_items(4), output, Processor(), load=load, num_workers=0)
    assert threads == {threading.current_thread().name}
    assert [r["loaded"] for r in read_jsonl(output)] == [0, 1, 2, 3]
    run(make_items(2), tmp_path / "none.jsonl", Processor())
    assert [r["loaded"] for r in read_jsonl(tmp_path / "none.jsonl")] == [None, None]


def test_process_must_return_one_record_per_item_in_order(tmp_path):
    items = make_items(4)
    with pytest.raises(ValueError, match="returned 2 record"):
        run(items, tmp_path / "a.jsonl", lambda chunk, loaded: [record_for(i) for i in chunk[:2]])
    with pytest.raises(ValueError, match="id 'x2' where 'x0' was due"):
        run(items, tmp_path / "b.jsonl", lambda chunk, loaded: [record_for(i) for i in reversed(chunk)])
    assert read_jsonl(tmp_path / "a.jsonl") == [] and read_jsonl(tmp_path / "b.jsonl") == []
    assert json.loads(json.dumps(JobStats(1, 0, 1, 0, 0, 0.5).__dict__))["total"] == 1
