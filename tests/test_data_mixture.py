"""YAML mixtures, sampling strategies and data files: exact selections, seeding, and errors that name the entry."""

from __future__ import annotations

import json
import random
from fractions import Fraction
from pathlib import Path

import pytest

from unifiedreward.data import (
    DataError,
    DatasetEntry,
    MixtureError,
    SamplingStrategy,
    build_mixture,
    load_mixture,
    load_records,
    parse_sampling_strategy,
    read_data_file,
)
from unifiedreward.errors import UnifiedRewardError

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[1]


def _record(i: int) -> dict:
    return {"id": f"r{i}", "conversations": [{"from": "human", "value": f"q{i}"}, {"from": "gpt", "value": f"a{i}"}]}


def _write_json(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def _write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _entry(path: Path, strategy: str | None, *, seed: int = 42, json_path: str | None = None) -> DatasetEntry:
    return DatasetEntry(
        json_path=json_path or path.name,
        path=path,
        strategy=parse_sampling_strategy(strategy, where=json_path or path.name),
        media_folder=path.parent,
        seed=seed,
    )


@pytest.fixture
def ten(tmp_path: Path) -> Path:
    return _write_json(tmp_path / "ten.json", [_record(i) for i in range(10)])


def _ids(entry: DatasetEntry) -> list[str]:
    return [raw.data["id"] for raw in load_records(entry)]


# ---------------------------------------------------------------------------------------------------------------- #
# sampling strategies


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (None, list(range(10))),
        ("all", list(range(10))),
        ("first:3", [0, 1, 2]),
        ("end:3", [7, 8, 9]),
        ("first:10", list(range(10))),
        ("end:1", [9]),
        ("first:10%", [0]),
        ("end:20%", [8, 9]),
        ("first:12.5%", [0, 1]),  # ceil(1.25) = 2
        ("end:33.3%", [6, 7, 8, 9]),  # ceil(3.33) = 4
        ("first:100%", list(range(10))),
        ("first:0.1%", [0]),  # ceil(0.01) = 1
        (" First : 3 ", [0, 1, 2]),  # case and spaces tolerated
    ],
)
def test_strategy_selects_exact_records(ten: Path, strategy: str | None, expected: list[int]):
    assert _ids(_entry(ten, strategy)) == [f"r{i}" for i in expected]


def test_percent_is_exact_not_float():
    # 33.3 * 1000 / 100 is 333.00000000000006 in floats; exact arithmetic gives 333
    assert parse_sampling_strategy("first:33.3%").num_selected(1000) == 333
    assert parse_sampling_strategy("random:12.5%").percent == Fraction(25, 2)
    assert str(parse_sampling_strategy("random:12.5%")) == "random:12.5%"
    assert str(parse_sampling_strategy("end:10%")) == "end:10%"
    assert str(parse_sampling_strategy(None)) == "all"


def test_random_is_seeded_and_ignores_global_rng(ten: Path):
    random.seed(1)
    first = _ids(_entry(ten, "random:3"))
    random.seed(12345)
    random.random()
    second = _ids(_entry(ten, "random:3"))
    assert first == second
    assert len(first) == 3 and len(set(first)) == 3
    assert first == sorted(first, key=lambda rid: int(rid[1:]))  # file order
    # the selection is a pure function of (length, strategy, seed, json_path): pinned
    assert SamplingStrategy("random", count=3).select(10, seed=42, key="ten.json") == [int(r[1:]) for r in first]


def test_random_does_not_touch_global_rng(ten: Path):
    random.seed(7)
    expected = random.random()
    random.seed(7)
    _ids(_entry(ten, "random:5"))
    assert random.random() == expected


def test_random_depends_on_seed_and_entry(ten: Path):
    base = _ids(_entry(ten, "random:3", seed=42))
    other_seeds = {tuple(_ids(_entry(ten, "random:3", seed=s))) for s in range(43, 53)}
    assert len(other_seeds | {tuple(base)}) > 1
    other_keys = {tuple(_ids(_entry(ten, "random:3", json_path=f"data/{k}.json"))) for k in range(10)}
    assert len(other_keys) > 1  # two entries do not draw the same permutation
    strategy = SamplingStrategy("random", count=4)
    a = strategy.select(100, seed=0, key="a.json")
    b = strategy.select(100, seed=0, key="b.json")
    assert a != b


def test_random_percent_and_full(ten: Path):
    assert len(_ids(_entry(ten, "random:25%"))) == 3
    assert _ids(_entry(ten, "random:10")) == [f"r{i}" for i in range(10)]


def test_random_subset_is_uniformish():
    strategy = SamplingStrategy("random", count=1)
    hits = [0] * 5
    for key in range(2000):
        hits[strategy.select(5, key=str(key))[0]] += 1
    assert all(300 < h < 500 for h in hits), hits


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("foo:3", "unknown strategy"),
        ("all:50%", "takes no count"),
        ("random", "needs a count"),
        ("first:", "needs a count"),
        ("first:abc", "malformed count"),
        ("first:3.5", "malformed count"),
        ("end:-3", "negative"),
        ("first:-10%", "negative"),
        ("end:0", "count is 0"),
        ("first:0", "count is 0"),
        ("random:0%", "(0, 100]"),
        ("first:150%", "(0, 100]"),
        ("first:%", "malformed"),
        ("shuffle", "unknown strategy"),
        (100, "expected a string"),
    ],
)
def test_bad_strategies_raise_naming_entry(value, needle: str):
    with pytest.raises(ValueError) as info:
        parse_sampling_strategy(value, where="dataset/X/train_data.json")
    message = str(info.value)
    assert needle in message
    assert "dataset/X/train_data.json" in message
    assert repr(value) in message
    assert isinstance(info.value, MixtureError) and isinstance(info.value, UnifiedRewardError)


@pytest.mark.parametrize("strategy", ["first:11", "end:50", "random:1000"])
def test_impossible_count_names_entry(ten: Path, strategy: str):
    with pytest.raises(MixtureError, match=r"ten\.json.*asks for \d+ records but the file has 10"):
        load_records(_entry(ten, strategy))


# ---------------------------------------------------------------------------------------------------------------- #
# data files


def test_json_and_jsonl_read_the_same(tmp_path: Path):
    records = [_record(i) for i in range(4)]
    as_json = read_data_file(_write_json(tmp_path / "a.json", records))
    as_jsonl = read_data_file(_write_jsonl(tmp_path / "a.jsonl", records))
    # JSONL content under a .json name is detected too
    as_jsonl_named_json = read_data_file(_write_jsonl(tmp_path / "b.json", records))
    for raws in (as_json, as_jsonl, as_jsonl_named_json):
        assert [r.data for r in raws] == records
        assert [r.index for r in raws] == [0, 1, 2, 3]
    assert [r.line for r in as_jsonl] == [1, 2, 3, 4]
    assert as_json[2].source == tmp_path / "a.json"


def test_jsonl_blank_lines_and_single_object(tmp_path: Path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps(_record(0)) + "\n\n" + json.dumps(_record(1)) + "\n")
    raws = read_data_file(path)
    assert [r.index for r in raws] == [0, 1] and [r.line for r in raws] == [1, 3]
    one = tmp_path / "one.json"
    one.write_text(json.dumps(_record(5)))
    assert [r.data["id"] for r in read_data_file(one)] == ["r5"]


def test_malformed_jsonl_reports_line(tmp_path: Path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(_record(0)) + "\n" + json.dumps(_record(1)) + "\n{not json\n")
    with pytest.raises(DataError, match=r"bad\.jsonl.*line 3"):
        read_data_file(path)
    path.write_text(json.dumps(_record(0)) + "\n[1, 2]\n")
    with pytest.raises(DataError, match=r"bad\.jsonl.*line 2 is a list"):
        read_data_file(path)


def test_malformed_json_reports_line(tmp_path: Path):
    path = tmp_path / "bad.json"
    path.write_text('[\n  {"id": 1},\n  {"id": 2,,}\n]')
    with pytest.raises(DataError, match=r"bad\.json.*line 3"):
        read_data_file(path)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ('{\n  "data": []\n}', "top level is a dict"),
        ('"hello"', "top level is a str"),
        ("", "empty"),
        ("[]", "no records"),
    ],
)
def test_bad_file_shapes(tmp_path: Path, content: str, needle: str):
    path = tmp_path / "shape.json"
    path.write_text(content)
    with pytest.raises(DataError, match=needle) as info:
        read_data_file(path)
    assert "shape.json" in str(info.value)


def test_missing_file(tmp_path: Path):
    with pytest.raises(DataError, match=r"nope\.json.*not found"):
        read_data_file(tmp_path / "nope.json")


# ---------------------------------------------------------------------------------------------------------------- #
# load_mixture


def _write_yaml(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_yaml_relative_paths_resolve_against_root(tmp_path: Path):
    _write_json(tmp_path / "dataset" / "A" / "train.json", [_record(i) for i in range(10)])
    _write_jsonl(tmp_path / "dataset" / "B" / "train.jsonl", [_record(i) for i in range(10, 15)])
    config = _write_yaml(
        tmp_path / "configs" / "mix.yaml",
        "datasets:\n"
        "  - json_path: dataset/A/train.json\n"
        "    sampling_strategy: end:2\n"
        "    image_folder: dataset/A/images\n"
        "  - json_path: dataset/B/train.jsonl\n"
        "    video_folder: /abs/videos\n",
    )
    entries = load_mixture(config, root=tmp_path)
    assert [e.json_path for e in entries] == ["dataset/A/train.json", "dataset/B/train.jsonl"]
    assert entries[0].path == tmp_path / "dataset" / "A" / "train.json"
    assert entries[0].media_folder == tmp_path / "dataset" / "A" / "images"
    assert entries[1].media_folder == Path("/abs/videos")
    assert str(entries[0].strategy) == "end:2" and str(entries[1].strategy) == "all"
    mixture = build_mixture(entries)
    assert [r.id for r in mixture] == ["r8", "r9", "r10", "r11", "r12", "r13", "r14"]
    assert [(s.json_path, s.strategy, s.available, s.selected) for s in mixture.summary] == [
        ("dataset/A/train.json", "end:2", 10, 2),
        ("dataset/B/train.jsonl", "all", 5, 5),
    ]
    table = mixture.format_summary()
    assert "dataset/A/train.json" in table and "end:2" in table and "total" in table


def test_yaml_root_defaults_to_cwd(tmp_path: Path, monkeypatch):
    _write_json(tmp_path / "d" / "x.json", [_record(0)])
    config = _write_yaml(tmp_path / "mix.yml", "datasets:\n  - json_path: d/x.json\n")
    monkeypatch.chdir(tmp_path)
    (entry,) = load_mixture("mix.yml")
    assert entry.path == tmp_path / "d" / "x.json"
    assert entry.media_folder == tmp_path  # no folder named: the root
    assert load_mixture(config, root=tmp_path)[0].path == entry.path


def test_yaml_seed_and_per_entry_seed(tmp_path: Path):
    _write_json(tmp_path / "x.json", [_record(i) for i in range(50)])
    config = _write_yaml(
        tmp_path / "m.yaml",
        "datasets:\n"
        "  - {json_path: x.json, sampling_strategy: 'random:5'}\n"
        "  - {json_path: x.json, sampling_strategy: 'random:5', seed: 3}\n",
    )
    a = load_mixture(config, root=tmp_path, seed=1)
    b = load_mixture(config, root=tmp_path, seed=1)
    assert [e.seed for e in a] == [1, 3]
    assert [r.id for r in build_mixture(a)] == [r.id for r in build_mixture(b)]
    assert _ids(a[0]) != _ids(a[1])


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("datasets: []\n", "at least one entry"),
        ("foo: 1\n", "'datasets:'"),
        ("datasets:\n  - sampling_strategy: all\n", "'json_path'"),
        ("datasets:\n  - json_path: x.json\n    sampling_stratgy: first:3\n", "unknown key"),
        ("datasets:\n  - json_path: x.json\n    sampling_strategy: all:50%\n", "all:50%"),
        ("datasets:\n  - json_path: x.json\n    image_folder: a\n    video_folder: b\n", "conflicting"),
        ("datasets:\n  - json_path: x.json\n    seed: abc\n", "'seed'"),
        ("datasets: [\n", "invalid YAML"),
    ],
)
def test_bad_yaml(tmp_path: Path, body: str, needle: str):
    config = _write_yaml(tmp_path / "m.yaml", body)
    with pytest.raises(MixtureError) as info:
        load_mixture(config, root=tmp_path, check_exists=False)
    assert needle in str(info.value)
    assert "m.yaml" in str(info.value)
    if "json_path: x.json" in body:  # entry-level errors name the entry too
        assert "datasets[0] (x.json)" in str(info.value)


def test_missing_files_listed(tmp_path: Path):
    _write_json(tmp_path / "here.json", [_record(0)])
    config = _write_yaml(
        tmp_path / "m.yaml", "datasets:\n  - json_path: here.json\n  - json_path: a.json\n  - json_path: b.json\n"
    )
    with pytest.raises(MixtureError, match=r"2 data file\(s\) not found: a\.json .*b\.json"):
        load_mixture(config, root=tmp_path)
    assert len(load_mixture(config, root=tmp_path, check_exists=False)) == 3


def test_single_file_and_brace_form(tmp_path: Path):
    for name in ("a", "b", "c"):
        _write_json(tmp_path / f"part_{name}.json", [_record(i) for i in range(2)])
    (single,) = load_mixture(tmp_path / "part_a.json", media_folder="media")
    assert single.path == tmp_path / "part_a.json" and str(single.strategy) == "all"
    entries = load_mixture(f"{tmp_path}/part_{{a,b,c}}.json")
    assert [e.path.name for e in entries] == ["part_a.json", "part_b.json", "part_c.json"]
    relative = load_mixture("part_{a,c}.json", root=tmp_path, media_folder="media")
    assert [e.path for e in relative] == [tmp_path / "part_a.json", tmp_path / "part_c.json"]
    assert relative[0].media_folder == tmp_path / "media"
    mixture = build_mixture(entries)
    assert [r.id for r in mixture] == ["r0", "r1"] * 3
    assert [r.source for r in mixture][::2] == [str(tmp_path / f"part_{n}.json") for n in "abc"]


@pytest.mark.parametrize("bad", ["x{a,b.json", "x{a}{b}.json", "x{a,,b}.json"])
def test_malformed_brace_form(bad: str):
    with pytest.raises(MixtureError, match="brace"):
        load_mixture(bad, check_exists=False)


def test_build_mixture_invalid_records(tmp_path: Path):
    good = [_record(i) for i in range(3)]
    bad = {"id": "broken", "conversations": []}
    path = _write_json(tmp_path / "mixed.json", [good[0], bad, good[1], good[2]])
    entries = load_mixture(path)
    with pytest.raises(DataError, match=r"mixed\.json.*'broken'"):
        build_mixture(entries)
    mixture = build_mixture(entries, on_invalid="skip")
    assert [r.id for r in mixture] == ["r0", "r1", "r2"]
    assert mixture.summary[0].invalid == 1 and mixture.summary[0].selected == 4


def test_default_ids_and_provenance(tmp_path: Path):
    records = [{"conversations": _record(i)["conversations"]} for i in range(3)]
    _write_jsonl(tmp_path / "d" / "noid.jsonl", records)
    config = _write_yaml(tmp_path / "m.yaml", "datasets:\n  - json_path: d/noid.jsonl\n")
    mixture = build_mixture(load_mixture(config, root=tmp_path))
    assert [r.id for r in mixture] == ["d/noid.jsonl:0", "d/noid.jsonl:1", "d/noid.jsonl:2"]
    assert [r.index for r in mixture] == [0, 1, 2]
    assert mixture[1].source == str(tmp_path / "d" / "noid.jsonl")


def test_mixture_pickles(ten: Path):
    import pickle

    mixture = build_mixture([_entry(ten, "first:2")])
    again = pickle.loads(pickle.dumps(mixture))
    assert [r.id for r in again] == ["r0", "r1"] and again.summary == mixture.summary


# ---------------------------------------------------------------------------------------------------------------- #
# the shipped mixture

UNIFIEDREWARD_1_0 = [  # protocol reference §3.2, in order
    ("dataset/HPD/train_data.json", "all", "dataset/HPD"),
    ("dataset/LiFT-HRA/train_data.json", "all", "dataset/LiFT-HRA"),
    ("dataset/LLaVA-critic/pairwise/train_data.json", "all", "dataset/LLaVA-critic/pairwise"),
    ("dataset/LLaVA-critic/pointwise/train_data.json", "random:25000", "dataset/LLaVA-critic/pointwise"),
    ("dataset/OIP/train_data.json", "random:25000", "dataset/OIP"),
    ("dataset/VideoFeedback/train_data.json", "all", "dataset/VideoFeedback/frames"),
    ("dataset/VideoDPO/train_data.json", "all", "dataset/VideoDPO"),
    ("dataset/EvalMuse/pairwise/train_data.json", "all", "dataset/EvalMuse/images"),
    ("dataset/EvalMuse/pointwise/train_data.json", "all", "dataset/EvalMuse/images"),
    ("dataset/ShareGPTVideo/pairwise/train_data.json", "all", "dataset/ShareGPTVideo/videos"),
    ("dataset/ShareGPTVideo/pointwise/train_data.json", "all", "dataset/ShareGPTVideo/videos"),
]


def test_shipped_mixture_matches_reference(tmp_path: Path):
    entries = load_mixture(REPO / "dataset" / "train_data.yaml", root=tmp_path, check_exists=False)
    assert [(e.json_path, str(e.strategy), str(e.media_folder.relative_to(tmp_path))) for e in entries] == (
        UNIFIEDREWARD_1_0
    )
    assert all(e.seed == 42 for e in entries)


def test_shipped_mixture_on_fake_data(tmp_path: Path):
    for json_path, strategy, _ in UNIFIEDREWARD_1_0:
        n = 25_001 if strategy.startswith("random") else 2
        stem = json_path.replace("/", "_")
        lines = (f'{{"id":"{stem}{i}","conversations":[]}}\n' for i in range(n))  # sampling reads, not parses
        (tmp_path / json_path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / json_path).write_text("".join(lines))  # JSONL under a .json name: detected
    entries = load_mixture(REPO / "dataset" / "train_data.yaml", root=tmp_path)
    counts = [len(load_records(entry)) for entry in entries]
    assert counts == [25_000 if s.startswith("random") else 2 for _, s, _ in UNIFIEDREWARD_1_0]
