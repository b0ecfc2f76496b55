"""The data layer of reward-model SFT: typed records, YAML mixtures and ``sampling_strategy``.

Import-light: only the standard library (``pyyaml`` is imported when a YAML mixture is read). Tokenization and
media decoding live elsewhere.

Typical use::

    from unifiedreward.data import build_mixture, load_mixture

    entries = load_mixture("dataset/train_data.yaml", seed=42)  # paths relative to the working directory
    records = build_mixture(entries)                             # sampled once, identically on every rank
    messages = records[0].to_messages()                          # Hugging Face chat messages with media parts
"""

from __future__ import annotations

from unifiedreward.data.mixture import (
    DEFAULT_SEED,
    DatasetEntry,
    EntrySummary,
    Mixture,
    MixtureError,
    RawRecord,
    SamplingStrategy,
    build_mixture,
    derive_seed,
    load_mixture,
    load_records,
    parse_sampling_strategy,
    read_data_file,
)
from unifiedreward.data.records import (
    IMAGES_AS_VIDEO_THRESHOLD,
    DataError,
    MediaPart,
    Part,
    Record,
    TextPart,
    Turn,
    parse_record,
)

__all__ = [
    "DEFAULT_SEED",
    "IMAGES_AS_VIDEO_THRESHOLD",
    "DataError",
    "DatasetEntry",
    "EntrySummary",
    "MediaPart",
    "Mixture",
    "MixtureError",
    "Part",
    "RawRecord",
    "Record",
    "SamplingStrategy",
    "TextPart",
    "Turn",
    "build_mixture",
    "derive_seed",
    "load_mixture",
    "load_records",
    "parse_record",
    "parse_sampling_strategy",
    "read_data_file",
]
