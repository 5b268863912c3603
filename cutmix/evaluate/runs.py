"""Opening a training run for evaluation: its config, its weights, its normalisation and its classes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cutmix import data as cdata
from cutmix.data.imageset import seeded_indices
from cutmix.evaluate.common import PixelClassifier
from cutmix.models import build_model
from cutmix.run import config as cfg
from cutmix.run.checkpoint import load_checkpoint
from cutmix.run.datasets import open_split
from cutmix.runtime import pick_device


@dataclass
class LoadedRun:
    """A trained model in eval mode on its device, with what the evaluation needs to feed it."""

    run_dir: Path
    config: cfg.TrainConfig
    model: nn.Module
    classifier: PixelClassifier
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    checkpoint: Path
    epoch: int

    @property
    def name(self) -> str:
        return self.run_dir.name

    @property
    def device(self) -> torch.device:
        return self.classifier.device


def find_checkpoint(run_dir: Path, which: str = "best") -> Path:
    """``best.pt`` (falling back to ``last.pt``), ``last.pt``, or an explicit file path."""
    if which not in ("best", "last"):
        path = Path(which)
        if not path.is_file():
            raise FileNotFoundError(f"--checkpoint {path} does not exist (expected best, last or a .pt file)")
        return path
    order = ["best.pt", "last.pt"] if which == "best" else ["last.pt"]
    for name in order:
        if (run_dir / name).is_file():
            return run_dir / name
    raise FileNotFoundError(f"run {run_dir} has no checkpoint ({' or '.join(order)}): train it first "
                            "(cutmix train) or pass --checkpoint PATH")


def load_run(run_dir: str | Path, checkpoint: str = "best", device: str = "auto") -> LoadedRun:
    """Rebuild the run's model from its saved config and load the weights of ``checkpoint``, for inference.

    ``checkpoint`` is "best" (best.pt, else last.pt), "last" or a path; ``device`` "auto", "cpu", "cuda", ... The
    model comes in eval mode on that device. It expects normalised float input; ``classifier`` wraps it with the
    run's normalisation, so it takes float images in [0, 1], [N, 3, H, W], at the training size (the dataset's
    size; ``config.data.image_size`` for ImageNet-style sets)::

        from cutmix.evaluate.runs import load_run

        run = load_run("runs/shapes-resnet20-cutmix-s0", device="cpu")
        with torch.inference_mode():
            probs = run.classifier(images.float() / 255).softmax(1)   # images: uint8 [N, 3, 32, 32]
        names = [run.classes[i] for i in probs.argmax(1).tolist()]

    Checkpoints load with ``torch.load(weights_only=True)`` (older ones with the NumPy types they need allowed).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory {run_dir} does not exist")
    if not (run_dir / "config.json").is_file():
        raise FileNotFoundError(f"{run_dir} has no config.json: not a cutmix run directory")
    config = cfg.load(run_dir / "config.json")
    if config.task != "classify":
        raise ValueError(f"{run_dir} is a --task {config.task} run: the evaluations here (error, calibration, "
                         f"robustness, OOD, CAM) are for classifiers; its per-epoch mIoU is in metrics.jsonl")
    path = find_checkpoint(run_dir, checkpoint)
    state = load_checkpoint(path)
    classes = list(state.get("classes") or [])
    weights: dict[str, Any] = state["model"]
    if not classes:
        raise ValueError(f"checkpoint {path} records no classes; cannot rebuild the model")
    num_classes = len(classes)
    model = build_model(config.model.name, num_classes, **config.model.kwargs)
    model.load_state_dict(weights)
    target = pick_device(device)
    model = model.to(target).eval()
    mean, std = state.get("mean_std") or ((0.5,) * 3, (0.25,) * 3)
    classifier = PixelClassifier(model, mean, std).to(target).eval()
    return LoadedRun(run_dir, config, model, classifier, classes,
                     tuple(mean), tuple(std), path, int(state.get("epoch", 0)))


def open_eval_set(config: cfg.TrainConfig, spec: str | None = None, limit: int | None = None,
                  num_workers: int = 0) -> cdata.ImageSet:
    """The images a run is evaluated on, decoded into memory at the model's input size.

    ``spec`` defaults to the run's validation set; ``limit`` keeps a seeded random subset (the same subset for
    every run, so runs compare on the same images). ImageNet-style sets of varied sizes are resized and centre-
    cropped as in validation, then materialised (mind the memory: ``limit`` 10000 at 224 px is 1.5 GB).
    """
    d = config.data
    own = d.val or d.dataset
    spec = spec or own
    num = d.val_samples if spec == own else None  # the run's own validation set: the same images as in training
    data = open_split(spec, "val" if spec == "shapes" else "test", config, num)
    if isinstance(data, cdata.ImageSet):
        return data.subset(num).subset(limit)
    data = data.subset(num)
    data.transform = cdata.eval_transform(d.image_size, round(d.image_size * 8 / 7))
    keep = seeded_indices(len(data), limit, seed=0)
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(data, keep.tolist()), batch_size=64,
                                         num_workers=num_workers, collate_fn=cdata.collate_skipping)
    batches = [(x, y) for x, y, _ in loader if x is not None]
    images, labels = zip(*batches, strict=False) if batches else ((), ())
    return cdata.ImageSet(torch.cat(images).contiguous(), torch.cat(labels).long(), list(data.classes), None,
                          getattr(data, "name", spec))
