"""Test-wide settings: offline Hugging Face hub, deterministic torch, quiet tokenizers."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest


@pytest.fixture(autouse=True)
def _seed_torch():
    """Every test starts from the same torch RNG state, so tiny random models are reproducible."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    torch.manual_seed(0)
    yield


def pytest_collection_modifyitems(config, items):
    """Skip ``gpu`` tests when CUDA is absent (the CI and dev machines have none)."""
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


class TinyModels:
    """Session cache of tiny random reward models: each architecture is saved once (``save_pretrained``) and loaded
    back through :func:`unifiedreward.modeling.load_reward_model`, the loader users call."""

    def __init__(self, root):
        self.root = root
        self._paths: dict[str, object] = {}
        self._loaded: dict[str, tuple] = {}

    def path(self, arch: str):
        """Directory of the saved tiny ``arch`` model (seed 0)."""
        if arch not in self._paths:
            from unifiedreward.testing.tiny_models import save_tiny_model

            self._paths[arch] = save_tiny_model(arch, self.root / arch, seed=0)
        return self._paths[arch]

    def load(self, arch: str) -> tuple:
        """``(model, processor)`` of the tiny ``arch`` model, loaded once per session."""
        if arch not in self._loaded:
            from unifiedreward.modeling import load_reward_model

            self._loaded[arch] = load_reward_model(self.path(arch))
        return self._loaded[arch]

    __call__ = load


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> TinyModels:
    return TinyModels(tmp_path_factory.mktemp("tiny_models"))
