"""Thin, optional adapters that bring cutmix's ops to the stacks people already train with.

Each submodule is imported only when used, and only it imports its package, so ``import cutmix`` and
``import cutmix.integrations`` stay torch-only:

* :mod:`cutmix.integrations.timm`: a drop-in for timm's ``Mixup`` / ``FastCollateMixup`` (needs no timm), and the
  mapping from timm's ``train.py`` flags;
* :mod:`cutmix.integrations.lightning`: ``MixCallback``, mixing training batches in a Lightning ``Trainer``;
* :mod:`cutmix.integrations.transformers`: ``MixCollator`` and ``SoftTargetTrainer`` for Hugging Face's ``Trainer``;
* :mod:`cutmix.integrations.tensorboard`: ``TensorBoardLogger`` for the training engine's epoch records.
"""
