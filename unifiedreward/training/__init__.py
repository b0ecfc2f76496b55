"""Reusable pieces of the training entry points (reward SFT in :mod:`unifiedreward.train`, and DPO).

* :mod:`unifiedreward.training.trainable`: which parts of a vision-language model train (vision tower, projector,
  language model), LoRA adapters, and parameter counts that also work under DeepSpeed ZeRO-3;
* :mod:`unifiedreward.training.trainer`: :class:`~unifiedreward.training.trainer.RewardSFTTrainer` (the SFT
  Trainer subclass) and its epoch-seeded length-grouped sampler;
* :mod:`unifiedreward.training.callbacks`: Trainer callbacks (dropped-sample limit agreed across ranks, a time
  budget, a progress bar that follows the time budget);
* :mod:`unifiedreward.training.sync`: the cross-rank agreement on the dropped-sample limit (no transformers import).

Import-light: submodules are imported on use.
"""
