"""The training loop: one process or DDP, CPU or CUDA, with exact resume.

A run directory holds ``config.json`` (the resolved configuration), ``metrics.jsonl`` (one line per epoch),
``last.pt`` / ``best.pt`` (atomic checkpoints), ``curves.png`` and ``summary.json``. ``train(None,
resume=RUN_DIR)`` continues a stopped or crashed run from ``last.pt`` (written at every epoch end, on a signal, and
every ``save_every`` steps): the loader and the mixing draw from generators seeded by (seed, rank, epoch, step),
and the checkpoint carries model, optimizer, scheduler, scaler, global RNG states and the partial epoch's sums, so
on a CPU the resumed run ends with the same weights as an uninterrupted one. ``changes`` may alter only the
settings declared ``resume=True`` (more epochs, threads, progress, cadences); others are refused by name.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import random
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from cutmix.data.normalize import Normalizer
from cutmix.run import config as cfg
from cutmix.run.checkpoint import load_checkpoint, remove_orphans, rng_state, save_checkpoint, set_rng_state
from cutmix.run.config import TrainConfig
from cutmix.run.settings import coerce
from cutmix.runtime import first_compiled_call, progress, seed_for, write_atomic
from cutmix.train import distributed
from cutmix.train.classify import ClassifyTask, accumulate
from cutmix.train.data import RunData
from cutmix.train.errors import RunFailure, UsageError
from cutmix.train.loader import MIX, PREVIEW
from cutmix.train.rundir import RunLock, claim_run_dir, run_name
from cutmix.train.segment import SegmentTask

CHECKPOINT_VERSION = 2  # 2: RNG states as tensors and plain values (weights_only loading), best_epoch
STOP_GRACE_S = 15.0  # DDP: how long a signal may wait for the main thread before the process exits without saving

__all__ = ["RunResult", "Trainer", "accumulate", "plan_resume", "run_name", "train"]
TASK_CLASSES = {"classify": ClassifyTask, "segment": SegmentTask}  # config.TASKS names them


@dataclass
class RunResult:
    run_dir: Path
    metrics: list[dict[str, Any]]
    best_val_top1_err: float | None  # classification runs; None for other tasks
    interrupted: bool = False
    best: float | None = None  # the best value of the task's score (val_top1_err, val_miou)


def lr_factor(step: int, total_steps: int, steps_per_epoch: int, config: cfg.OptimConfig) -> float:
    """Learning-rate multiplier at optimizer ``step`` (0-based): linear warm-up, then cosine / step / constant."""
    warmup = round(config.warmup_epochs * steps_per_epoch)
    if step < warmup:
        return (step + 1) / warmup
    if config.schedule == "cosine":
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
    if config.schedule == "step":
        passed = sum(step >= round(m * total_steps) for m in config.milestones)
        return config.gamma**passed
    return 1.0


# SGD keyword arguments per kernel choice; "loop" is the per-parameter loop, torch's default on a CPU.
SGD_IMPLS: dict[str, dict[str, bool]] = {"fused": {"fused": True}, "foreach": {"foreach": True},
                                         "loop": {"foreach": False}}


@functools.cache
def _sgd_runs(impl: str, device: str) -> bool:
    """Whether SGD with ``impl``'s kernels takes a step on ``device`` with this torch build.

    Support depends on the torch version and the device (``fused`` is checked only at the first step, and older
    versions lack the argument), so a two-element probe answers it instead of a version table.
    """
    param = torch.zeros(2, device=device, requires_grad=True)
    param.grad = torch.ones_like(param)
    try:
        torch.optim.SGD([param], lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4, **SGD_IMPLS[impl]).step()
    except (TypeError, RuntimeError, ValueError, NotImplementedError):
        return False
    return True


def build_optimizer(params, config: cfg.OptimConfig, device: torch.device) -> tuple[torch.optim.SGD, str]:
    """SGD with the fastest kernels that run here; returns it and the kernel choice it got.

    ``config.impl = "auto"`` takes fused kernels on CUDA (one launch for all parameters), else foreach, and the
    plain loop on a CPU (torch's CPU default, so CPU runs stay what they were). A choice that does not run on this
    device or torch version falls back along fused -> foreach -> loop.
    """
    chain = ("fused", "foreach", "loop")
    if config.impl == "auto":
        candidates = chain if device.type == "cuda" else ("loop",)
    else:
        candidates = chain[chain.index(config.impl):]
    impl = next(c for c in candidates if c == "loop" or _sgd_runs(c, str(device)))
    optimizer = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov,
                                weight_decay=config.weight_decay, **SGD_IMPLS[impl])
    return optimizer, impl


def resolve_channels_last(setting: bool | None, device: torch.device, amp: str) -> bool:
    """``channels_last = None`` (auto): on for a CPU, where oneDNN's NHWC convolutions train a CIFAR ResNet-20 about
    1.3x faster than NCHW (``cutmix bench step --device cpu``), and on CUDA under autocast (tensor cores want NHWC);
    off for CUDA in float32, where it is not reliably faster. An explicit True/False is kept."""
    if setting is not None:
        return bool(setting)
    return device.type == "cpu" or amp != "none"


class Trainer:
    def __init__(self, config: TrainConfig, ctx: distributed.Context, run_dir: Path | None,
                 checkpoint: dict[str, Any] | None = None) -> None:
        """Load the data and build the model, optimizer and regulariser; nothing is written (``run_dir`` may be
        assigned later, once a new run's directory is claimed)."""
        self.config, self.ctx, self.run_dir = config, ctx, run_dir
        if config.threads:
            torch.set_num_threads(config.threads)
        random.seed(config.seed)
        np.random.seed(config.seed % 2**32)
        torch.manual_seed(seed_for(config.seed, 0, ctx.rank))
        self.task = TASK_CLASSES[config.task]()
        self.data: RunData = self.task.build_data(config, ctx)
        self.steps_per_epoch = len(self.data.train)
        self.total_steps = self.steps_per_epoch * config.epochs
        if config.max_steps is not None:
            self.total_steps = min(self.total_steps, config.max_steps)

        model = self.task.build_model(config, self.data.num_classes).to(ctx.device)
        self.channels_last = resolve_channels_last(config.channels_last, ctx.device, config.amp)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.train_model: nn.Module = model
        if ctx.distributed:
            self.train_model = nn.parallel.DistributedDataParallel(
                model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
        self.eager_model = self.train_model
        if config.compile:
            self.train_model = self._compile(self.train_model)
        # torch.compile is lazy: it traces and compiles at the first call, so that is where it can fail.
        self.compile_pending = self.train_model is not self.eager_model

        o = config.optim
        self.optimizer, self.optim_impl = build_optimizer(model.parameters(), o, ctx.device)
        if o.impl not in ("auto", self.optim_impl):
            self._say(f"optim.impl={o.impl} does not run on {ctx.device} with torch {torch.__version__}; "
                      f"using {self.optim_impl}")
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, self.total_steps, self.steps_per_epoch, o))
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.amp)
        if self.amp_dtype is not None and ctx.device.type != "cuda":
            why = amp_fallback(config.amp, ctx.device)
            if why:
                self._say(f"amp={config.amp} {why}; training in float32 on {ctx.device}")
                self.amp_dtype = None
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.regularizer = self.task.build_regularizer(config, self.train_model, self.data.num_classes,
                                                       self.total_steps)
        self.normalizer = Normalizer(self.data.mean, self.data.std).to(ctx.device)

        self.tensorboard: Any = None  # a TensorBoardLogger while run() runs
        self.preview: tuple[Tensor, Tensor] | None = None  # the first batch of an epoch, for the TensorBoard picture
        if config.tensorboard and ctx.is_main:  # fail now, before a run directory exists (one line from the CLI)
            import cutmix.integrations.tensorboard  # noqa: F401

        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.epoch_sums = torch.zeros(self.task.num_sums, dtype=torch.float64, device=ctx.device)
        self.best: float | None = None
        self.best_epoch: int | None = None  # the epoch whose weights best.pt holds
        self._reported_skips: set[str] = set()
        self.metrics: list[dict[str, Any]] = []
        self.stop = StopRequest()
        self.started, self.elapsed_before = time.perf_counter(), 0.0
        if checkpoint is not None:
            self._restore(checkpoint)

    # -- set-up helpers -------------------------------------------------------------------------------------------
    def _compile(self, model: nn.Module) -> nn.Module:
        if self.config.mix.method in ("feature-cutmix", "manifold-mixup"):
            self._say("compile skipped: feature-level mixing hooks a layer, which torch.compile would re-trace")
            return model
        try:
            return torch.compile(model)  # type: ignore[return-value]
        except Exception as err:  # pragma: no cover - depends on the toolchain
            self._say(f"torch.compile failed ({type(err).__name__}: {err}); training eagerly")
            return model

    def _say(self, message: str) -> None:
        if self.ctx.is_main:
            print(message, file=sys.stderr, flush=True)

    def _restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        for group in self.optimizer.param_groups:  # the kernels chosen here, not those of the machine that saved it
            group.update({"fused": None, "foreach": None, **SGD_IMPLS[self.optim_impl]})
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step_in_epoch = state["epoch"], state["step_in_epoch"]
        self.global_step, self.best = state["global_step"], state[self.best_key]
        self.best_epoch = state.get("best_epoch", _best_epoch(state["metrics"], self.best, self.task.score))
        self.elapsed_before = float(state.get("elapsed_s", 0.0))
        self.epoch_sums = state["epoch_sums"].to(self.ctx.device)
        rng = state["rng"][self.ctx.rank] if isinstance(state["rng"], list) else state["rng"]
        set_rng_state(rng)
        # The checkpoint is the source of truth: an interruption between the checkpoint and the metrics file must
        # neither lose nor repeat an epoch's line.
        self.metrics = [m for m in state["metrics"] if m["epoch"] <= self.epoch]
        if self.ctx.is_main and self.run_dir is not None:
            self._write_metrics()

    def adopt_newer_best(self) -> str | None:
        """On resume: a best.pt newer than last.pt (its write succeeded, last.pt's then failed) holds a model that
        was evaluated and is better than any before it; keep it as the best, so best.pt, the state and the summary
        agree even if the redone epoch does not reproduce it exactly (GPU). Returns a note, or None."""
        assert self.run_dir is not None
        path = self.run_dir / "best.pt"
        if not path.is_file():
            return None
        best = load_checkpoint(path)
        if best["epoch"] <= self.epoch or best.get(self.best_key) is None:
            return None
        self.best, self.best_epoch = best[self.best_key], best["epoch"]
        return (f"best.pt holds epoch {best['epoch']}, newer than last.pt (a write failed after it); it stays the "
                f"best ({self.task.score} {self.best:.2%}) unless a later epoch beats it")

    @property
    def best_key(self) -> str:
        """The checkpoint's key of the best score so far (``best_val_top1_err`` for classification)."""
        return f"best_{self.task.score}"

    def _state(self, interrupted: bool, gather: bool = True) -> dict[str, Any]:
        rngs: Any = rng_state()
        if self.ctx.distributed and gather:
            gathered: list[Any] = [None] * self.ctx.world_size
            torch.distributed.all_gather_object(gathered, rngs)
            rngs = gathered
        return {
            "version": CHECKPOINT_VERSION,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "epoch_sums": self.epoch_sums.cpu(),
            self.best_key: self.best,
            "best_epoch": self.best_epoch,
            "rng": rngs,
            "config": cfg.to_dict(self.config),
            "metrics": list(self.metrics),
            "classes": self.data.classes,
            "mean_std": (self.data.mean, self.data.std),
            "interrupted": interrupted,
            "elapsed_s": self.elapsed(),
        }

    def save(self, interrupted: bool = False, best: bool = False) -> None:
        """Write best.pt (when ``best``) and then last.pt, the same state to both.

        The order keeps them from disagreeing: if best.pt's write fails, last.pt still holds the previous epoch and
        a resume redoes this one; if last.pt's fails after it, best.pt is newer than last.pt and a resume keeps it
        as the best (:meth:`adopt_newer_best`). On an interruption under DDP the ranks may be stopped at different
        points, so no collective runs then: rank 0 saves its own RNG state only (data order and mixing are
        counter-seeded and stay exact; model-internal randomness of other ranks, such as dropout, does not)."""
        gather = not (interrupted and self.ctx.distributed)
        state = self._state(interrupted, gather)  # every rank takes part in gathering the RNG states
        if self.ctx.is_main:
            assert self.run_dir is not None
            if best:
                save_checkpoint(state, self.run_dir / "best.pt")
            save_checkpoint(state, self.run_dir / "last.pt")

    # -- the loop -------------------------------------------------------------------------------------------------
    def model_input(self, images: Tensor) -> Tensor:
        """uint8 batch on the device -> normalised float (channels_last if asked)."""
        x = self.normalizer(images)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.ctx.device.type, dtype=self.amp_dtype)

    def train_epoch(self, interrupt_at: int | None) -> bool:
        """Run the rest of the current epoch; returns False when max_steps stopped it early."""
        loader = self.data.train
        self.train_model.train()
        bar = progress(len(loader), f"epoch {self.epoch + 1}/{self.config.epochs}", initial=self.step_in_epoch,
                       enabled=self.config.progress and self.ctx.is_main)
        sums = self.epoch_sums
        for images, labels in loader.epoch(self.epoch, self.step_in_epoch):
            if (interrupt_at is not None and self.global_step == interrupt_at) or self.stop.requested:
                raise KeyboardInterrupt
            if self.tensorboard is not None and self.preview is None:
                self.preview = (images[:16].clone(), labels[:16].clone())
            step = self._first_compiled_step if self.compile_pending else self._step
            self.task.accumulate(sums, *step(images, labels), labels)
            self.global_step += 1
            self.step_in_epoch += 1
            if bar is not None:
                bar.update(1)
                if self.step_in_epoch % 20 == 0 or self.step_in_epoch == len(loader):
                    bar.set_postfix(loss=f"{sums[0].item() / max(sums[2].item(), 1):.3f}",
                                    lr=f"{self.scheduler.get_last_lr()[0]:.4f}")
            if self.config.max_steps is not None and self.global_step >= self.config.max_steps:
                break
            every = self.config.save_every
            if every is not None and self.global_step % every == 0 and self.step_in_epoch < len(loader):
                self.save()  # mid-epoch: a crash loses at most `save_every` steps (epoch ends always save)
        if bar is not None:
            bar.close()
        return self.step_in_epoch >= len(loader)

    def _step(self, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One optimizer step on a batch; returns the loss, logits and targets (all left on the device)."""
        x = self.model_input(images)
        self.regularizer.prepare(self.global_step, seed_for(self.config.seed, MIX, self.ctx.rank, self.global_step))
        with self.autocast():
            loss, logits, targets = self.task.loss(self.regularizer, self.train_model, x, labels)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return loss, logits, targets

    def _first_compiled_step(self, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The first step of a compiled model; if compiling fails, say so in one line and redo the step eagerly.

        Compilation errors surface in the forward or the backward pass, before the optimizer steps; the redo
        re-seeds the mix for this step and restores the global RNGs, so it draws what an eager run draws.
        """
        state = rng_state()

        def eagerly() -> tuple[Tensor, Tensor, Tensor]:
            self.train_model = self.eager_model
            set_rng_state(state)
            return self._step(images, labels)

        try:
            return first_compiled_call(lambda: self._step(images, labels), eagerly, self._say, "at the first step ",
                                       "training eagerly")[0]
        finally:
            self.compile_pending = False

    @torch.no_grad()
    def evaluate(self, loader: Any, prefix: str = "val") -> dict[str, float]:
        """The task's scores of the model (eval mode, no mixing) on ``loader``, keys ``PREFIX_...`` (classification:
        loss and top-1/top-5 error)."""
        model = self.model
        model.eval()
        sums: Tensor | None = None
        bar = progress(len(loader), f"evaluating ({prefix})", enabled=self.config.progress and self.ctx.is_main)
        for images, labels in loader.epoch(0):
            if bar is not None:
                bar.update(1)
            with self.autocast():
                logits = model(self.model_input(images)).float()
            batch = self.task.eval_sums(logits, labels)
            sums = batch if sums is None else sums.add_(batch)
        if bar is not None:
            bar.close()
        assert sums is not None, "an evaluation loader yields at least one batch"
        distributed.all_reduce_sum(sums, self.ctx)
        return self.task.eval_scores(sums, prefix)

    def finished(self) -> bool:
        return self.epoch >= self.config.epochs or self.global_step >= self.total_steps

    def run(self, interrupt_at: int | None = None) -> RunResult:
        config, ctx = self.config, self.ctx
        if self.finished():
            self._say(f"{self.run_dir} has finished its {self.epoch} epochs ({self.global_step} steps): nothing to do "
                      f"(pass --epochs N > {self.epoch} to extend it)")
            return self._result(False)
        if ctx.is_main:
            self._say(f"run {self.run_dir}: {self.data.info['train']}, val {self.data.info['val']}, "
                      f"model {config.model.name}, mix {config.mix.method}, {config.epochs} epochs of "
                      f"{self.steps_per_epoch} steps x {config.batch_size} x {ctx.world_size} process(es) "
                      f"on {ctx.device} (SGD {self.optim_impl}, channels_last "
                      f"{'on' if self.channels_last else 'off'}{', compiled' if self.compile_pending else ''}"
                      f"{', data on the device' if self.data.info.get('resident') else ''}"
                      f"{f', evaluating every {config.eval_every} epochs' if config.eval_every > 1 else ''})")
        if self.config.tensorboard and ctx.is_main:
            from cutmix.integrations.tensorboard import TensorBoardLogger

            self.tensorboard = TensorBoardLogger(self.run_dir)
        interrupted = False
        self.started = time.perf_counter()
        self.stop = StopRequest(STOP_GRACE_S if ctx.distributed else None, rank=ctx.rank)
        with self.stop:
            try:
                while not self.finished():
                    epoch_start = time.perf_counter()
                    steps_before = self.step_in_epoch
                    complete = self.train_epoch(interrupt_at)
                    elapsed = time.perf_counter() - epoch_start
                    self._end_epoch(elapsed, (self.step_in_epoch - steps_before) * config.batch_size * ctx.world_size,
                                    last=not complete or self.global_step >= self.total_steps)
                    if not complete:
                        break
            except ForcedStop:
                interrupted = True
                self._say(f"stopped without saving; resume from the last checkpoint with: cutmix train --resume "
                          f"{self.run_dir}")
            except KeyboardInterrupt:
                interrupted = True
                self.save(interrupted=True)
                self._say(f"interrupted at epoch {self.epoch + 1}, step {self.step_in_epoch}; last.pt saved. Resume "
                          f"with: cutmix train --resume {self.run_dir}")
            except RuntimeError as err:
                if not (ctx.distributed and distributed.is_timeout(err)):
                    raise
                raise RunFailure(f"rank {ctx.rank}: a collective waited more than {config.ddp_timeout:g} s for the "
                                 f"other ranks (one stalled or died); the last checkpoint is kept: cutmix train "
                                 f"--resume {self.run_dir}") from err
        if self.tensorboard is not None:
            self.tensorboard.close()
        result = self._result(interrupted)
        if not interrupted and ctx.is_main:
            self._summarise(self.elapsed())
        return result

    def _result(self, interrupted: bool) -> RunResult:
        top1 = self.best if self.task.score == "val_top1_err" else None
        return RunResult(self.run_dir, self.metrics, top1, interrupted, self.best)  # type: ignore[arg-type]

    def elapsed(self) -> float:
        """Wall-clock seconds of the whole run, over every resumed segment."""
        return self.elapsed_before + time.perf_counter() - self.started

    def _end_epoch(self, seconds: float, images_seen: int, last: bool = False) -> None:
        """Log the epoch, evaluate when due (every ``eval_every`` epochs and after the last), save checkpoints."""
        sums = distributed.all_reduce_sum(self.epoch_sums.clone(), self.ctx)
        per_rank = distributed.all_gather_floats(self.task.rank_value(self.epoch_sums), self.ctx)
        due = last or self.epoch + 1 >= self.config.epochs or (self.epoch + 1) % self.config.eval_every == 0
        val: dict[str, float] = {}
        if due:
            val = self.evaluate(self.data.val)
            if self.data.train_eval is not None:
                val.update(self.evaluate(self.data.train_eval, "train_eval"))
        record = {
            "epoch": self.epoch + 1,
            "step": self.global_step,
            "lr": self.scheduler.get_last_lr()[0],
            **self.task.train_scores(sums),
            **val,
            "epoch_time_s": round(seconds, 3),
            "train_images_per_s": round(images_seen / max(seconds, 1e-9), 1),
            self.task.rank_key: [round(v, 6) for v in per_rank],
        }
        skipped = self._skipped_files()
        if skipped:
            record["skipped_images"] = len(skipped)
        self.metrics.append(record)
        improved = due and (self.best is None or self._better(val[self.task.score], self.best))
        if improved:
            self.best, self.best_epoch = val[self.task.score], self.epoch + 1
        self.epoch += 1
        self.step_in_epoch = 0
        self.epoch_sums = torch.zeros_like(self.epoch_sums)
        self.save(best=improved)
        if self.ctx.is_main:
            self._write_metrics()
            self._plot()
            self._log_tensorboard(record)
            scores = self.task.scores_text(val) if due else ""
            self._report_skipped(skipped)
            self._say(f"epoch {record['epoch']}: train loss {record['train_loss']:.4f}{scores} "
                      f"({record['train_images_per_s']:.0f} img/s)")

    def _log_tensorboard(self, record: dict[str, Any]) -> None:
        """The epoch's record as scalars and, for input-level mixing, the first batch as the model saw it mixed.

        The picture is mixed with its own seed after the epoch's steps; each step re-seeds the transform, so
        drawing it changes nothing the run trains on (a test holds the losses equal with and without it).
        """
        if self.tensorboard is None:
            return
        epoch = record["epoch"]
        self.tensorboard.log_epoch(record, step=epoch)
        if self.preview is not None:
            images, labels = self.preview
            mixed = self.regularizer.preview(images, labels, seed_for(self.config.seed, PREVIEW, epoch))
            self.tensorboard.log_images("train/mixed_batch", mixed, epoch)
        self.preview = None

    def _skipped_files(self) -> dict[str, str]:
        """Unreadable files left out so far by per-image loaders (``--skip-corrupt``), name -> reason."""
        return {**getattr(self.data.train, "skipped", {}), **getattr(self.data.val, "skipped", {})}

    def _report_skipped(self, skipped: dict[str, str]) -> None:
        new = [name for name in skipped if name not in self._reported_skips]
        if new:
            more = f" and {len(new) - 1} more" if len(new) > 1 else ""
            self._say(f"skipped {len(new)} unreadable image(s) ({len(skipped)} in all): {skipped[new[0]]}{more}")
            self._reported_skips.update(new)

    def _write_metrics(self) -> None:
        write_atomic(self.run_dir / "metrics.jsonl", "".join(json.dumps(m) + "\n" for m in self.metrics))

    def _plot(self) -> None:
        try:
            from cutmix.viz.curves import plot_curves
        except ImportError:  # matplotlib is optional
            return
        error, label = self.task.plot_error()
        plot_curves(self.metrics, self.run_dir / "curves.png", title=self.run_dir.name, error=error, label=label)

    def _better(self, value: float, than: float) -> bool:
        return value > than if self.task.higher_is_better else value < than

    def _summarise(self, seconds: float) -> None:
        """summary.json, whose best is the state's (the epoch best.pt holds), never recomputed from the log."""
        evaluated = [m for m in self.metrics if self.task.score in m]
        last = evaluated[-1] if evaluated else {}
        best_epoch = self.best_epoch
        summary = {
            "run_dir": str(self.run_dir),
            "epochs": self.epoch,
            "steps": self.global_step,
            "task": self.task.name,
            **self.task.summary(last, self.best),
            "best_epoch": best_epoch,
            "best_checkpoint": "best.pt" if best_epoch is not None else None,
            "channels_last": self.channels_last,
            "wall_time_s": round(seconds, 1),
            "mean_train_images_per_s": round(
                sum(m["train_images_per_s"] for m in self.metrics) / max(len(self.metrics), 1), 1),
        }
        write_atomic(self.run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
        if evaluated:
            print(f"done: {summary['epochs']} epochs, {self.task.done_text(summary)}, "
                  f"{summary['wall_time_s']:.0f} s -> {self.run_dir}", flush=True)


class StopRequest:
    """Ctrl-C (SIGINT) and SIGTERM (schedulers, preemption, ``kill``) ask the loop to stop at the next step boundary.

    Raising from inside the handler could land anywhere, e.g. between ``optimizer.step()`` and the step counter,
    and the checkpoint would then be one step off. So the first signal only sets ``requested``; the loop checks it
    before each step, where the state is whole, and saves. A second signal stops at once without saving (the last
    complete checkpoint stays in place).

    Python runs a handler only when the main thread returns to the interpreter, and a DDP rank waiting in a
    collective for a stalled rank does not return: it would ignore the signal until the collective timed out. With
    ``grace_s`` a watchdog thread learns of each signal at once (through ``signal.set_wakeup_fd``); if the handler
    has not run ``grace_s`` seconds later, the process says so in one line and exits without saving.
    """

    def __init__(self, grace_s: float | None = None, rank: int = 0) -> None:
        self.requested = False
        self.grace_s, self.rank = grace_s, rank
        self._previous: dict[int, Any] = {}
        self._handled = 0
        self._pipe: tuple[int, int] | None = None
        self._old_wakeup = -1
        self._watchdog: threading.Thread | None = None

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
            if self.grace_s is not None:
                self._start_watchdog()
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self._handled += 1
        if self.requested:
            raise ForcedStop(f"signal {signal.Signals(signum).name} twice")
        self.requested = True
        print(f"{signal.Signals(signum).name}: saving after this step (send it again to stop without saving)",
              file=sys.stderr, flush=True)

    def _start_watchdog(self) -> None:
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)
        self._old_wakeup = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        self._pipe = (read_end, write_end)
        self._watchdog = threading.Thread(target=self._watch, args=(read_end,), name="cutmix-stop-watchdog",
                                          daemon=True)
        self._watchdog.start()

    def _watch(self, read_end: int) -> None:
        received = 0
        stops = {int(signal.SIGINT), int(signal.SIGTERM)}
        while True:
            try:
                data = os.read(read_end, 64)
            except OSError:
                return
            if not data:  # the write end was closed: the loop is over
                return
            for signum in data:
                if signum not in stops:
                    continue
                received += 1
                deadline = time.monotonic() + float(self.grace_s or 0.0)
                while self._handled < received and time.monotonic() < deadline:
                    time.sleep(0.05)
                if self._handled < received:
                    name = signal.Signals(signum).name
                    os.write(2, f"{name}: rank {self.rank} did not reach a step boundary within {self.grace_s:g} s "
                                f"(blocked in a collective, waiting for another rank?); exiting without saving, "
                                f"the last checkpoint is kept\n".encode())
                    os._exit(128 + signum)

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        if self._pipe is not None:
            signal.set_wakeup_fd(self._old_wakeup)
            os.close(self._pipe[1])  # the watchdog reads end-of-file and returns
            if self._watchdog is not None:
                self._watchdog.join(timeout=1.0)
            os.close(self._pipe[0])
            self._pipe = None


def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 instructions (AVX512-BF16, AMX): without them bf16 autocast is slower than float32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def amp_fallback(amp: str, device: torch.device) -> str | None:
    """Why autocast ``amp`` cannot run on a non-CUDA ``device`` (None: it can). On a CPU only bf16 with native
    instructions is worth it (``benchmarks/train_speed.py --ours "--amp bf16"`` measures it)."""
    if device.type == "cpu" and amp == "bf16":
        return None if cpu_has_bf16() else "needs CUDA or a CPU with bf16 instructions (this one has none)"
    return "needs CUDA"


class ForcedStop(KeyboardInterrupt):
    """A second interrupt: leave immediately, keeping the last complete checkpoint."""


def _best_epoch(metrics: list[dict[str, Any]], best: float | None, score: str) -> int | None:
    """The epoch of ``best`` in a log (checkpoints of version 1 did not record it): the first to reach it."""
    if best is None:
        return None
    return next((m["epoch"] for m in metrics if m.get(score) == best), None)


@dataclass
class ResumePlan:
    """What ``--resume`` will continue: the config to use, the checkpoint, and the changes it makes."""

    run_dir: Path
    config: TrainConfig
    checkpoint: dict[str, Any]
    changed: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # path -> (before, after)

    def describe(self) -> str:
        state = self.checkpoint
        where = (f"resuming {self.run_dir} at epoch {state['epoch'] + 1}, step {state['step_in_epoch']} of it "
                 f"(global step {state.get('global_step', 0)})")
        if not self.changed:
            return where
        return where + "; changed: " + ", ".join(f"{k} {_show(a)} -> {_show(b)}" for k, (a, b) in self.changed.items())


def _show(value: Any) -> str:
    return "unset" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _changes_text(changes: dict[str, tuple[Any, Any]]) -> str:
    settings = cfg.all_settings()
    return ", ".join(f"{settings[k].flag_text if k in settings else k} ({_show(a)} -> {_show(b)})"
                     for k, (a, b) in changes.items())


def plan_resume(run_dir: str | Path, changes: dict[str, Any] | None = None) -> ResumePlan:
    """Check a run directory for ``--resume`` and apply the allowed ``changes`` (``{"epochs": 12}``) to its config.

    ``config.json`` must agree with the checkpoint's own copy of the config except in settings declared
    ``resume=True``; a change of any other setting is refused with a UsageError naming each one (the run would no
    longer be what its directory says). Keys missing from an older config or checkpoint take their defaults.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise FileNotFoundError(f"--resume {run_dir}: no config.json there (not a cutmix run directory)")
    stored = cfg.load(run_dir / "config.json")
    if not (run_dir / "last.pt").is_file():
        raise FileNotFoundError(f"--resume {run_dir}: no last.pt there (the run stopped before its first "
                                f"checkpoint); start it again instead")
    checkpoint = load_checkpoint(run_dir / "last.pt")
    saved = cfg.apply(cfg.TrainConfig(), checkpoint.get("config") or {}, f"{run_dir / 'last.pt'} config")
    settings = cfg.all_settings()
    edited = cfg.differences(saved, stored)
    unsafe = {k: v for k, v in edited.items() if not settings[k].spec.resume}
    if unsafe:
        raise UsageError(f"{run_dir / 'config.json'} differs from the config of its checkpoint last.pt in "
                         f"{_changes_text(unsafe)}; restore config.json or start a new run")
    config, changed = stored, dict(edited)
    refused: dict[str, tuple[Any, Any]] = {}
    for path, value in (changes or {}).items():
        if path.startswith("model.kwargs."):
            name = path.rpartition(".")[2]
            before = config.model.kwargs.get(name)
            if before != value:
                refused[path] = (before, value)
            continue
        s = cfg.find(path)
        value = coerce(s, value, path)
        before = cfg.get(config, path)
        if before == value:
            continue
        if not s.spec.resume:
            refused[path] = (before, value)
            continue
        cfg.put(config, path, value)
        changed[path] = (edited.get(path, (before,))[0], value)  # from the checkpoint's value if edited too
    if refused:
        allowed = ", ".join(s.spec.flag or s.path for s in settings.values() if s.spec.resume)
        raise UsageError(f"--resume {run_dir} cannot change {_changes_text(refused)}: only {allowed} may change on "
                         f"a resume; start a new run for the others")
    cfg.validate(config)
    done = checkpoint["epoch"] + (1 if checkpoint["step_in_epoch"] else 0)
    if config.epochs < done:
        raise UsageError(f"--epochs {config.epochs}: {run_dir} has already trained {done} epoch(s)")
    return ResumePlan(run_dir, config, checkpoint, changed)


def _rank_from_env() -> int:
    return int(os.environ.get("RANK", "0"))


def train(config: TrainConfig | None = None, resume: str | Path | None = None, *,
          changes: dict[str, Any] | None = None, interrupt_at: int | None = None) -> RunResult:
    """Train from ``config``, or continue the run in ``resume`` from its last.pt (its own config, with the allowed
    ``changes``, see :func:`plan_resume`).

    A new run's directory is created only once the data and the model have loaded, so a failed start leaves
    nothing behind; the process holds the directory's lock until it returns. ``interrupt_at`` (a global step)
    simulates Ctrl-C there: the run saves ``last.pt`` and returns with ``interrupted=True``, exactly as a real
    interruption does.
    """
    lock: RunLock | None = None
    plan: ResumePlan | None = None
    if resume is not None:
        run_dir = Path(resume)
        if not (run_dir / "config.json").is_file():
            raise FileNotFoundError(f"--resume {run_dir}: no config.json there (not a cutmix run directory)")
        if _rank_from_env() == 0:
            lock = RunLock(run_dir).acquire()  # before reading the checkpoint another process may be writing
    try:
        if resume is not None:
            plan = plan_resume(resume, changes)
            config = plan.config
        elif config is None:
            raise TypeError("train() needs a config, or resume=RUN_DIR")
        elif changes:
            raise TypeError("changes apply to resume=RUN_DIR only; set them on the config of a new run")
        else:
            config = cfg.resolve_paths(cfg.validate(config))
        ctx = distributed.setup(config.device, config.ddp_timeout)
        try:
            if plan is not None:
                return _resume(plan, ctx, interrupt_at)
            trainer = Trainer(config, ctx, None)  # data and model load before anything is written
            run_dir = Path(str(distributed.broadcast_object(str(claim_run_dir(config)) if ctx.is_main else None,
                                                            ctx)))
            if ctx.is_main:
                lock = RunLock(run_dir).acquire()
                cfg.save(config, run_dir / "config.json")
            trainer.run_dir = run_dir
            distributed.barrier(ctx)
            return trainer.run(interrupt_at)
        finally:
            distributed.teardown(ctx)
    finally:
        if lock is not None:
            lock.release()


def _resume(plan: ResumePlan, ctx: distributed.Context, interrupt_at: int | None) -> RunResult:
    removed: list[Path] = []
    if ctx.is_main:
        removed = remove_orphans(plan.run_dir)
        if plan.changed:
            cfg.save(plan.config, plan.run_dir / "config.json")
    trainer = Trainer(plan.config, ctx, plan.run_dir, plan.checkpoint)
    trainer._say(plan.describe())
    if removed:
        trainer._say(f"removed {len(removed)} temporary file(s) left by a killed write: "
                     f"{', '.join(p.name for p in removed)}")
    if ctx.is_main and (note := trainer.adopt_newer_best()):
        trainer._say(note)
    return trainer.run(interrupt_at)
