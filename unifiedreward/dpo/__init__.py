"""Preference optimisation (DPO) of vision-language, diffusion and video-generation models.

Submodules are imported on use (nothing is imported here, so ``import unifiedreward.dpo`` stays cheap):

* :mod:`unifiedreward.dpo.vlm_data` - preference records (``infer+sift.py`` output, upstream's DPO json, YAML
  mixtures) -> a lazily decoding dataset, with skipped records counted by id;
* :mod:`unifiedreward.dpo.vlm_collator` - the batch builder (images through TRL, videos through our own path);
* :mod:`unifiedreward.dpo.vlm` - flags, :func:`~unifiedreward.dpo.vlm.run_dpo` and the ``train_dpo`` entry point.
"""
