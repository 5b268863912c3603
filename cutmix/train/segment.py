"""Semantic segmentation, ``cutmix train --task segment``: the builtin shapes masks, any input-level regulariser
applied to image and mask alike, pixel cross-entropy with an ignore index, mIoU per evaluation.

The regulariser runs through :class:`cutmix.DenseMix`, so a mask pixel always comes from the image whose pixel is
there: CutMix pastes the partner's mask with its pixels, Cutout writes the ignore index where it erases (the loss
skips those pixels), and Mixup, which has no class for a blended pixel, is trained as its paper trains labels:
``lam * CE(own mask) + (1 - lam) * CE(partner's mask)``. Feature-level methods mix inside a classifier and are
refused, as is a label mode other than ``area`` (it weighs class targets, which a mask has none of).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from cutmix import data as cdata
from cutmix.data.shapes import IGNORE_INDEX
from cutmix.dense import DenseMix, blend_masks
from cutmix.models.segment import build_segmenter
from cutmix.run.config import TrainConfig
from cutmix.train.classify import build_with_kwargs
from cutmix.train.data import RunData, crop_flip, eval_batch_size
from cutmix.train.distributed import Context
from cutmix.train.errors import UsageError
from cutmix.train.loader import InMemoryLoader, use_resident
from cutmix.train.mixing import build_transform

IGNORE = IGNORE_INDEX
METHODS = ("none", "cutmix", "cutout", "mixup")


def check_config(config: TrainConfig) -> None:
    """Settings that a segmentation run cannot honour, refused by name before anything loads."""
    d, m = config.data, config.mix
    if d.dataset != "shapes" or d.val not in (None, "shapes"):
        raise UsageError(f"--task segment trains on the builtin shapes masks (--data shapes); got --data {d.dataset}"
                         + (f" --val-data {d.val}" if d.val not in (None, "shapes") else ""))
    if m.method not in METHODS:
        raise UsageError(f"--task segment: --mix {m.method} is not defined for masks; use one of {', '.join(METHODS)}")
    if m.label != "area":
        raise UsageError(f"--task segment: --label {m.label} weighs class targets, which masks do not have; "
                         "leave --label area")
    if d.augment not in ("auto", "crop-flip", "none"):
        raise UsageError(f"--task segment: --augment {d.augment} is not defined for masks; use crop-flip or none")


class MaskLoader:
    """Batches ``(images uint8 [B, 3, H, W], masks uint8 [B, H, W])`` of a loader over images with the mask stacked
    as a fourth channel, so that the crop and flip of the batch move both by the same offsets. Crop padding
    (``--pad-mode``) pads the mask as it pads the image: ``zeros`` gives black pixels the background class."""

    def __init__(self, loader: InMemoryLoader) -> None:
        self.loader = loader
        self.num_samples = loader.num_samples

    def __len__(self) -> int:
        return len(self.loader)

    def epoch(self, epoch: int, start: int = 0):
        for packed, _ in self.loader.epoch(epoch, start):
            yield packed[:, :3], packed[:, 3]


def build_data(config: TrainConfig, ctx: Context) -> RunData:
    check_config(config)
    d = config.data
    sets = {split: cdata.load_shapes_segmentation(split, n, size=d.image_size, num_classes=d.num_classes)
            for split, n in (("train", d.train_samples), ("val", d.val_samples))}
    packed = {split: torch.cat([images.images, masks[:, None]], dim=1) for split, (images, masks) in sets.items()}
    labels = {split: images.labels for split, (images, _) in sets.items()}
    nbytes = sum(p.nbytes for p in packed.values())
    common = {"seed": config.seed, "rank": ctx.rank, "world_size": ctx.world_size, "device": ctx.device,
              "resident": use_resident(d.resident, ctx.device, nbytes)}
    augment = None
    if d.augment != "none":
        augment = partial(crop_flip, max(1, d.image_size // 8), d.pad_mode)
    eval_batch = eval_batch_size(config, ctx.device)
    train = InMemoryLoader(packed["train"], labels["train"], config.batch_size, train=True, augment=augment, **common)
    val = InMemoryLoader(packed["val"], labels["val"], eval_batch, train=False, **common)
    train_eval = None
    if d.train_eval_samples is not None:
        n = min(d.train_eval_samples, packed["train"].shape[0])
        train_eval = MaskLoader(InMemoryLoader(packed["train"][:n], labels["train"][:n], eval_batch, train=False,
                                               **common))
    classes = cdata.segmentation_classes(d.num_classes)
    mean, std = cdata.MEAN_STD["shapes"]
    info = {"train": f"shapes segmentation ({packed['train'].shape[0]} images, {len(classes)} classes with "
                     f"background)", "val": f"shapes segmentation ({packed['val'].shape[0]} images)",
            "resident": common["resident"]}
    return RunData(MaskLoader(train), MaskLoader(val), len(classes), classes, mean, std, info, None,
                   train_eval)  # type: ignore[arg-type]


class SegmentRegularizer:
    """``(model, images, masks) -> (loss, scores, target masks)``, the mask mixed with the images' geometry."""

    def __init__(self, config: TrainConfig, num_classes: int, total_steps: int) -> None:
        self.method = config.mix.method
        self.label_smoothing = config.optim.label_smoothing
        transform = build_transform(config.mix, num_classes, total_steps, 0.0)
        self.transform = transform
        self.mix = None if transform is None else DenseMix(transform, ignore_index=IGNORE, return_params=True)

    def prepare(self, step: int, seed: int) -> None:
        """Point the transform at global ``step`` (schedules) and re-seed it for this step."""
        if self.transform is not None:
            self.transform.step = step
            self.transform.reseed(seed)

    def __call__(self, model: nn.Module, images: Tensor, masks: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        if self.mix is None:
            scores = model(images)
            return pixel_loss(scores, masks, self.label_smoothing), scores, masks
        if self.method == "mixup":
            images, params = self.mix(images)
            index = params.index.to(masks.device)
            scores = model(images)
            lam = params.lam.to(device=scores.device, dtype=torch.float32)
            loss = pixel_loss(scores, (masks, masks.index_select(0, index)), self.label_smoothing, (lam, 1 - lam))
            return loss, scores, blend_masks(masks, lam, params.index, hard="larger")
        images, masks, _ = self.mix(images, masks)
        scores = model(images)
        return pixel_loss(scores, masks, self.label_smoothing), scores, masks

    def preview(self, images: Tensor, masks: Tensor, seed: int) -> Tensor:
        """``images`` mixed as a training step would mix them, drawn from ``seed`` (for pictures)."""
        if self.mix is None:
            return images
        assert self.transform is not None
        self.transform.reseed(seed)
        with torch.no_grad():
            return self.mix(images)[0]


def pixel_loss(scores: Tensor, masks: Tensor | tuple[Tensor, ...], label_smoothing: float = 0.0,
               weights: tuple[Tensor, ...] | None = None) -> Tensor:
    """Cross-entropy over the pixels that are not :data:`IGNORE`, averaged over them; with several masks, each
    image's loss against each mask weighted by ``weights`` (per image), normalised by the weighted pixel counts
    (so an image whose partner is mostly ignore pixels is not over-weighted)."""
    masks = (masks,) if isinstance(masks, Tensor) else masks
    weights = weights or (torch.ones(scores.shape[0], device=scores.device),)
    total = scores.new_zeros(())
    count = scores.new_zeros(())
    for mask, w in zip(masks, weights, strict=True):
        target = mask.long()
        ce = F.cross_entropy(scores.float(), target, ignore_index=IGNORE, reduction="none",
                             label_smoothing=label_smoothing)
        total = total + (w * ce.sum(dim=(1, 2))).sum()
        count = count + (w * (target != IGNORE).sum(dim=(1, 2))).sum()
    return total / count.clamp_min(1)


@torch.no_grad()
def accumulate(sums: Tensor, loss: Tensor, scores: Tensor, masks: Tensor, labels: Tensor) -> None:
    """Add a step's (loss * n, correct pixels, counted pixels, n) to ``sums`` on its device (no host reads)."""
    valid = masks != IGNORE
    n = sums.new_full((), float(masks.shape[0]))
    hits = ((scores.argmax(1) == masks.long()) & valid).sum().double()
    sums += torch.stack([loss.detach().double() * n, hits, valid.sum().double(), n])


class SegmentTask:
    """Masks [N, H, W] (0 background, ``c + 1`` shape ``c``, 255 ignored); the best checkpoint has the highest
    val mIoU (mean over the classes present in the masks or predictions)."""

    name = "segment"
    score = "val_miou"
    higher_is_better = True
    num_sums = 4  # see accumulate()
    rank_key = "train_pixels_per_rank"  # pixels counted per rank (the ignore index excluded)

    def build_data(self, config: TrainConfig, ctx: Context) -> RunData:
        return build_data(config, ctx)

    def build_model(self, config: TrainConfig, num_classes: int) -> nn.Module:
        return build_with_kwargs(build_segmenter, config, num_classes)

    def build_regularizer(self, config: TrainConfig, model: nn.Module, num_classes: int,
                          total_steps: int) -> SegmentRegularizer:
        return SegmentRegularizer(config, num_classes, total_steps)

    def loss(self, regularizer: SegmentRegularizer, model: nn.Module, x: Tensor,
             masks: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return regularizer(model, x, masks)

    accumulate = staticmethod(accumulate)

    def rank_value(self, sums: Tensor) -> float:
        return sums[2].item()

    def train_scores(self, sums: Tensor) -> dict[str, float]:
        return {"train_loss": sums[0].item() / max(sums[3].item(), 1),
                "train_pixel_err": 1 - sums[1].item() / max(sums[2].item(), 1)}

    def eval_sums(self, scores: Tensor, masks: Tensor) -> Tensor:
        """(loss sum, counted pixels, images, confusion matrix K x K flattened) of one batch, float64."""
        k = scores.shape[1]
        target = masks.long()
        valid = target != IGNORE
        loss = F.cross_entropy(scores, target, ignore_index=IGNORE, reduction="sum").double()
        # ignored pixels go to one extra bin, dropped: no boolean indexing, so no host synchronisation
        pairs = torch.where(valid, target * k + scores.argmax(1), k * k)
        confusion = torch.bincount(pairs.flatten(), minlength=k * k + 1)[: k * k].double()
        head = torch.stack([loss, valid.sum().double(),
                            torch.as_tensor(float(masks.shape[0]), device=scores.device, dtype=torch.float64)])
        return torch.cat([head, confusion])

    def eval_scores(self, sums: Tensor, prefix: str) -> dict[str, Any]:
        loss, pixels, images = sums[:3].tolist()
        k = round((sums.numel() - 3) ** 0.5)
        scores = miou(sums[3:].view(k, k))
        return {f"{prefix}_loss": loss / max(pixels, 1), f"{prefix}_miou": scores["miou"],
                f"{prefix}_pixel_err": scores["pixel_err"], f"{prefix}_iou": scores["iou"],
                f"{prefix}_images": int(images)}

    def scores_text(self, val: dict[str, Any]) -> str:
        clean = f", clean train mIoU {val['train_eval_miou']:.2%}" if "train_eval_miou" in val else ""
        return f", val mIoU {val['val_miou']:.2%}, pixel error {val['val_pixel_err']:.2%}{clean}"

    def summary(self, last: dict[str, Any], best: float | None) -> dict[str, Any]:
        return {"final_val_miou": last.get("val_miou"), "final_val_pixel_err": last.get("val_pixel_err"),
                "best_val_miou": best, "final_train_eval_miou": last.get("train_eval_miou")}

    def done_text(self, summary: dict[str, Any]) -> str:
        return (f"final val mIoU {summary['final_val_miou']:.2%} (best {summary['best_val_miou']:.2%} at epoch "
                f"{summary['best_epoch']})")

    def plot_error(self) -> tuple[str, str]:
        return "pixel_err", "pixel error (%)"


def miou(confusion: Tensor) -> dict[str, Any]:
    """Scores of a confusion matrix [K, K] (rows: true class, columns: predicted): per-class IoU (None for a class
    neither present nor predicted), their mean over the other classes, and the pixel error."""
    confusion = confusion.double()
    hits = confusion.diagonal()
    union = confusion.sum(0) + confusion.sum(1) - hits
    iou = [None if u == 0 else h / u for h, u in zip(hits.tolist(), union.tolist(), strict=True)]
    seen = [v for v in iou if v is not None]
    total = confusion.sum().item()
    return {"iou": iou, "miou": sum(seen) / len(seen) if seen else 0.0,
            "pixel_err": 1 - hits.sum().item() / total if total else 0.0}
