"""UnifiedReward: unified multimodal reward models on the current Hugging Face stack.

Subpackages:
    protocol: prompt templates (verbatim from upstream), rendering and answer parsers.
    media: image and video loading.
    modeling: loading reward-model checkpoints.
    inputs: turning rendered prompts into model inputs.
    testing: tiny offline models and synthetic media for tests.
"""

__version__ = "0.1.0"
