"""Preference-data construction: candidate sets, sifting strategies over any reward judge, output records.

    >>> from unifiedreward.preference import CandidateSet, Candidate, sift            # doctest: +SKIP
    >>> decisions = sift([candidate_set], judge, strategy="tournament")               # doctest: +SKIP

See ``docs/preference.md`` for formats, strategies and their cost, and running at scale.
"""

from unifiedreward.preference.bradley_terry import fit_bradley_terry, win_rates
from unifiedreward.preference.candidates import Candidate, CandidateSet, default_template
from unifiedreward.preference.records import (
    decision_record,
    expand_pairs,
    failed_record,
    pairs_from_log,
    preference_record,
    summarize,
)
from unifiedreward.preference.strategies import (
    STRATEGIES,
    PointwiseConfig,
    SiftDecision,
    TournamentConfig,
    UpstreamConfig,
    pointwise,
    sift,
    tournament,
    upstream,
)

__all__ = [
    "STRATEGIES",
    "Candidate",
    "CandidateSet",
    "PointwiseConfig",
    "SiftDecision",
    "TournamentConfig",
    "UpstreamConfig",
    "decision_record",
    "default_template",
    "expand_pairs",
    "failed_record",
    "fit_bradley_terry",
    "pairs_from_log",
    "pointwise",
    "preference_record",
    "sift",
    "summarize",
    "tournament",
    "upstream",
    "win_rates",
]
