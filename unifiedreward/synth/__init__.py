"""A procedurally generated world with ground truth for all four judging tasks (the demo's data).

* :mod:`unifiedreward.synth.world`: scenes (shapes with colour, count and position) and clips (a shape moving in a
  direction, possibly changing colour), deterministic from a seed, with ground truth.
* :mod:`unifiedreward.synth.data`: training records in the released format (prompts from the protocol's templates),
  a ``train_data.yaml`` mixture, and held-out files in the GenAI-Bench / VideoGen-RewardBench / VL-RewardBench
  formats plus point-score requests for ``unifiedreward judge``.
* :mod:`unifiedreward.synth.tokenizer`: a small byte-level BPE tokenizer trained on the world's text, with each
  constant prompt segment as one token.

Used by ``python -m unifiedreward.demo``; see ``docs/demo.md``.
"""

from unifiedreward.synth.data import (
    AUX_COMBOS,
    COMBOS,
    DIFFICULTY_PRESETS,
    MODES,
    TASKS,
    DifficultyMix,
    Example,
    HeldoutData,
    TrainingData,
    make_example,
    video_understanding_benchmark,
    world_text,
    write_heldout,
    write_training_data,
)
from unifiedreward.synth.tokenizer import build_world_tokenizer
from unifiedreward.synth.world import Clip, MotionSpec, Scene, SceneSpec, World

__all__ = [
    "AUX_COMBOS",
    "COMBOS",
    "DIFFICULTY_PRESETS",
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
    "build_world_tokenizer",
    "make_example",
    "video_understanding_benchmark",
    "world_text",
    "write_heldout",
    "write_training_data",
]
