"""A procedurally generated world with ground truth for all four judging tasks (the demo's data).

* :mod:`unifiedreward.synth.world`: scenes (shapes with colour, count and position) and clips (a shape moving in a
  direction, possibly changing colour), deterministic from a seed, with ground truth.
* :mod:`unifiedreward.synth.tasks`: the tasks, the :class:`Example` type and the :class:`DifficultyMix`;
  :mod:`unifiedreward.synth.text`: questions, answers, the protocol's prompts and the explained answers'
  checklists; :mod:`unifiedreward.synth.examples`: drawing examples deterministically.
* :mod:`unifiedreward.synth.records`: training records in the released format (prompts from the protocol's
  templates) and a ``train_data.yaml`` mixture; :mod:`unifiedreward.synth.heldout`: held-out files in the
  GenAI-Bench / VideoGen-RewardBench / VL-RewardBench formats plus point-score requests for ``unifiedreward judge``;
  :mod:`unifiedreward.synth.media`: PNG and H.264 writers.
* :mod:`unifiedreward.synth.tokenizer`: a small byte-level BPE tokenizer trained on the world's text, with each
  constant prompt segment as one token.

Used by ``python -m unifiedreward.demo``; see ``docs/demo.md``.
"""

from unifiedreward.synth.examples import make_caption_example, make_example
from unifiedreward.synth.heldout import HeldoutData, video_understanding_benchmark, write_heldout
from unifiedreward.synth.media import save_media, write_clip, write_video
from unifiedreward.synth.records import TrainingData, default_strategies, training_record, write_training_data
from unifiedreward.synth.tasks import (
    AUX_COMBOS,
    CAPTION_KINDS,
    COMBOS,
    DIFFICULTY_PRESETS,
    MODES,
    TASKS,
    DifficultyMix,
    Example,
)
from unifiedreward.synth.text import answer_text, reasoning_text, render_user_text, score_range, world_text
from unifiedreward.synth.tokenizer import build_world_tokenizer
from unifiedreward.synth.world import MIN_IMAGE_SIZE, Clip, MotionSpec, Scene, SceneSpec, World

__all__ = [
    "AUX_COMBOS",
    "CAPTION_KINDS",
    "COMBOS",
    "DIFFICULTY_PRESETS",
    "MIN_IMAGE_SIZE",
    "MODES",
    "TASKS",
    "Clip",
    "DifficultyMix",
    "Example",
    "HeldoutData",
    "MotionSpec",
    "Scene",
    "SceneSpec",
    "TrainingData",
    "World",
    "answer_text",
    "build_world_tokenizer",
    "default_strategies",
    "make_caption_example",
    "make_example",
    "reasoning_text",
    "render_user_text",
    "save_media",
    "score_range",
    "training_record",
    "video_understanding_benchmark",
    "world_text",
    "write_clip",
    "write_heldout",
    "write_training_data",
    "write_video",
]
