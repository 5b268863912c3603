"""Image classification, the default task of ``cutmix train``: what the loop trains, measures and reports.

The engine owns the loop (steps, checkpoints, resume, DDP, cadences); a task supplies what depends on the kind of
target: the data, the model, the regulariser and loss of one step, the sums an epoch accumulates, the evaluation
scores, and which score picks the best checkpoint. :mod:`cutmix.train.segment` is the other task.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from cutmix.losses import soft_target_cross_entropy
from cutmix.models import build_model
from cutmix.run.config import TrainConfig
from cutmix.train.data import RunData, build_data
from cutmix.train.distributed import Context
from cutmix.train.errors import UsageError
from cutmix.train.mixing import Regularizer


def build_with_kwargs(build: Callable[..., nn.Module], config: TrainConfig, num_classes: int) -> nn.Module:
    """``build(name, num_classes, **model.kwargs)``; keyword arguments the model does not take are the user's
    mistake, named as such."""
    try:
        return build(config.model.name, num_classes, **config.model.kwargs)
    except TypeError as err:
        if not config.model.kwargs:
            raise
        raise UsageError(f"model {config.model.name} does not take model.kwargs {config.model.kwargs} ({err})") \
            from None


@torch.no_grad()
def accumulate(sums: Tensor, loss: Tensor, logits: Tensor, targets: Tensor, labels: Tensor) -> None:
    """Add a step's (loss * n, top-1 hits, n, summed top target weight) to ``sums`` on its device.

    Everything stays a device tensor (the count is filled there, not copied from the host), so that a training
    step never waits for the GPU; the host reads the sums once per epoch.
    """
    n = labels.shape[0]
    count = sums.new_full((), float(n))
    top_weight = targets.float().max(dim=1).values.sum().double() if targets.ndim == 2 else count
    sums += torch.stack([loss.detach().double() * n, (logits.argmax(1) == labels).sum().double(), count, top_weight])


class ClassifyTask:
    """Class labels [N]; soft-target cross-entropy; top-1/top-5 error; the best checkpoint has the lowest val
    top-1 error."""

    name = "classify"
    score = "val_top1_err"  # picks best.pt
    higher_is_better = False
    num_sums = 4  # see accumulate()
    rank_key = "mean_top_target_per_rank"  # per-rank check that every rank mixes its own batch

    def build_data(self, config: TrainConfig, ctx: Context) -> RunData:
        return build_data(config, ctx)

    def build_model(self, config: TrainConfig, num_classes: int) -> nn.Module:
        return build_with_kwargs(build_model, config, num_classes)

    def build_regularizer(self, config: TrainConfig, model: nn.Module, num_classes: int,
                          total_steps: int) -> Regularizer:
        return Regularizer(config.mix, model, num_classes, total_steps, config.optim.label_smoothing)

    def loss(self, regularizer: Regularizer, model: nn.Module, x: Tensor,
             labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The step's loss, logits and (possibly mixed) targets, under the caller's autocast."""
        logits, targets = regularizer(model, x, labels)
        return (soft_target_cross_entropy(logits, targets, label_smoothing=regularizer.loss_smoothing(targets)),
                logits, targets)

    accumulate = staticmethod(accumulate)

    def rank_value(self, sums: Tensor) -> float:
        """This rank's mean top target weight (1.0 unmixed)."""
        return sums[3].item() / max(sums[2].item(), 1)

    def train_scores(self, sums: Tensor) -> dict[str, float]:
        count = max(sums[2].item(), 1)
        return {"train_loss": sums[0].item() / count, "train_top1_err": 1 - sums[1].item() / count}

    def eval_sums(self, logits: Tensor, labels: Tensor) -> Tensor:
        """(loss sum, top-1 hits, top-5 hits, count) of one evaluation batch, float64 on its device."""
        k = min(5, logits.shape[1])
        top = logits.topk(k, dim=1).indices
        return torch.stack([
            torch.nn.functional.cross_entropy(logits, labels, reduction="sum").double(),
            (top[:, 0] == labels).sum().double(),
            (top == labels[:, None]).any(dim=1).sum().double(),
            torch.as_tensor(float(labels.shape[0]), device=logits.device, dtype=torch.float64),
        ])

    def eval_scores(self, sums: Tensor, prefix: str) -> dict[str, Any]:
        loss, top1, top5, count = sums.tolist()
        return {f"{prefix}_loss": loss / count, f"{prefix}_top1_err": 1 - top1 / count,
                f"{prefix}_top5_err": 1 - top5 / count, f"{prefix}_images": int(count)}

    def scores_text(self, val: dict[str, Any]) -> str:
        clean = (f", clean train top-1 error {val['train_eval_top1_err']:.2%}" if "train_eval_top1_err" in val
                 else "")
        return f", val top-1 error {val['val_top1_err']:.2%}, top-5 {val['val_top5_err']:.2%}{clean}"

    def summary(self, last: dict[str, Any], best: float | None) -> dict[str, Any]:
        return {"final_val_top1_err": last.get("val_top1_err"), "final_val_top5_err": last.get("val_top5_err"),
                "best_val_top1_err": best, "final_train_eval_top1_err": last.get("train_eval_top1_err")}

    def done_text(self, summary: dict[str, Any]) -> str:
        return (f"final val top-1 error {summary['final_val_top1_err']:.2%} "
                f"(best {summary['best_val_top1_err']:.2%} at epoch {summary['best_epoch']})")

    def plot_error(self) -> tuple[str, str]:
        """The error key of the training curves and its axis label."""
        return "top1_err", "top-1 error (%)"
