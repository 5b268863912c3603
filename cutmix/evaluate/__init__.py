"""The paper's evaluations of a trained classifier, as pure functions on tensors and one driver for run directories.

- :mod:`~cutmix.evaluate.classify`: top-1/5 error, per-class accuracy, confusion matrix
- :mod:`~cutmix.evaluate.calibration`: expected calibration error (15 bins), reliability bins, NLL, Brier
- :mod:`~cutmix.evaluate.cam`, :mod:`~cutmix.evaluate.wsol`, :mod:`~cutmix.evaluate.boxsets`: class activation
  maps (Grad-CAM as the fallback), map -> box, weakly-supervised localisation scores, CUB / ImageNet boxes
- :mod:`~cutmix.evaluate.robustness`: FGSM, centre / boundary occlusion, in-between-class samples
- :mod:`~cutmix.evaluate.ood`: the max-softmax detector, TNR at TPR95, AUROC, AUPR, detection accuracy
- :mod:`~cutmix.evaluate.suite` (``cutmix eval``) and :mod:`~cutmix.evaluate.report` (``cutmix report``)

>>> from cutmix.evaluate.suite import EvalOptions, evaluate_run
>>> result = evaluate_run("runs/shapes-resnet20-cutmix-s0", EvalOptions(suites=("cls", "loc")))  # doctest: +SKIP
"""
