"""The training loop: one process or DDP, CPU or CUDA, with exact resume.

A run directory holds ``config.json`` (the resolved configuration), ``metrics.jsonl`` (one line per epoch),
``last.pt`` / ``best.pt`` (atomic checkpoints), ``curves.png`` and ``summary.json``. ``train(config,
resume=RUN_DIR)`` continues an interrupted run: the loader and the mixing draw from generators seeded by
(seed, rank, epoch, step), and the checkpoint carries model, optimizer, scheduler, scaler, global RNG states and
the partial epoch's sums, so on a CPU the resumed run ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import random
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from cutmix.losses import soft_target_cross_entropy
from cutmix.models import build_model
from cutmix.train import config as cfg
from cutmix.train import distributed
from cutmix.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from cutmix.train.config import TrainConfig
from cutmix.train.data import RunData, build_data
from cutmix.train.loader import MIX, seed_for
from cutmix.train.mixing import Regularizer

CHECKPOINT_VERSION = 1


@dataclass
class RunResult:
    run_dir: Path
    metrics: list[dict[str, Any]]
    best_val_top1_err: float | None
    interrupted: bool = False


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


def resolve_channels_last(setting: bool | None, device: torch.device, amp: str) -> bool:
    """``channels_last = None`` (auto): on for a CPU, where oneDNN's NHWC convolutions train a CIFAR ResNet-20 about
    1.3x faster than NCHW (``cutmix bench step --device cpu``), and on CUDA under autocast (tensor cores want NHWC);
    off for CUDA in float32, where it is not reliably faster. An explicit True/False is kept."""
    if setting is not None:
        return bool(setting)
    return device.type == "cpu" or amp != "none"


def run_name(config: TrainConfig) -> str:
    dataset = Path(config.data.dataset).stem if "/" in config.data.dataset else config.data.dataset
    model = config.model.name.replace(":", "-").replace("/", "-")
    return f"{dataset}-{model}-{config.mix.method}-s{config.seed}"


def new_run_dir(config: TrainConfig) -> Path:
    root = Path(config.out)
    base = config.name or run_name(config)
    path, i = root / base, 2
    while path.exists():
        path, i = root / f"{base}-{i}", i + 1
    return path


class Trainer:
    def __init__(self, config: TrainConfig, ctx: distributed.Context, run_dir: Path,
                 checkpoint: dict[str, Any] | None = None) -> None:
        self.config, self.ctx, self.run_dir = config, ctx, run_dir
        if config.threads:
            torch.set_num_threads(config.threads)
        random.seed(config.seed)
        np.random.seed(config.seed % 2**32)
        torch.manual_seed(seed_for(config.seed, 0, ctx.rank))
        self.data: RunData = build_data(config, ctx)
        self.steps_per_epoch = len(self.data.train)
        self.total_steps = self.steps_per_epoch * config.epochs
        if config.max_steps is not None:
            self.total_steps = min(self.total_steps, config.max_steps)

        model = build_model(config.model.name, self.data.num_classes, **config.model.kwargs)
        model = model.to(ctx.device)
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
            self._say(f"amp={config.amp} needs CUDA; training in float32 on {ctx.device}")
            self.amp_dtype = None
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.regularizer = Regularizer(config.mix, self.train_model, self.data.num_classes, self.total_steps,
                                       o.label_smoothing)
        mean = torch.tensor(self.data.mean, device=ctx.device).view(1, -1, 1, 1)
        std = torch.tensor(self.data.std, device=ctx.device).view(1, -1, 1, 1)
        self.mean, self.std = mean, std

        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.epoch_sums = torch.zeros(4, dtype=torch.float64, device=ctx.device)
        self.best: float | None = None
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
        self.global_step, self.best = state["global_step"], state["best_val_top1_err"]
        self.elapsed_before = float(state.get("elapsed_s", 0.0))
        self.epoch_sums = state["epoch_sums"].to(self.ctx.device)
        rng = state["rng"][self.ctx.rank] if isinstance(state["rng"], list) else state["rng"]
        set_rng_state(rng)
        # The checkpoint is the source of truth: an interruption between the checkpoint and the metrics file must
        # neither lose nor repeat an epoch's line.
        self.metrics = [m for m in state["metrics"] if m["epoch"] <= self.epoch]
        if self.ctx.is_main:
            self._write_metrics()

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
            "best_val_top1_err": self.best,
            "rng": rngs,
            "config": cfg.to_dict(self.config),
            "metrics": list(self.metrics),
            "classes": self.data.classes,
            "mean_std": (self.data.mean, self.data.std),
            "interrupted": interrupted,
            "elapsed_s": self.elapsed(),
        }

    def save(self, interrupted: bool = False, best: bool = False) -> None:
        """Write last.pt (and best.pt). On an interruption under DDP the ranks may be stopped at different points,
        so no collective runs then: rank 0 saves its own RNG state only (data order and mixing are counter-seeded
        and stay exact; model-internal randomness of other ranks, such as dropout, does not)."""
        gather = not (interrupted and self.ctx.distributed)
        state = self._state(interrupted, gather)  # every rank takes part in gathering the RNG states
        if self.ctx.is_main:
            save_checkpoint(state, self.run_dir / "last.pt")
            if best:
                save_checkpoint(state, self.run_dir / "best.pt")

    # -- the loop -------------------------------------------------------------------------------------------------
    def prepare(self, images: Tensor) -> Tensor:
        """uint8 batch on the device -> normalised float (channels_last if asked)."""
        x = images.float().div_(255).sub_(self.mean).div_(self.std)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.ctx.device.type, dtype=self.amp_dtype)

    def train_epoch(self, interrupt_at: int | None) -> bool:
        """Run the rest of the current epoch; returns False when max_steps stopped it early."""
        loader = self.data.train
        self.train_model.train()
        bar = _progress(len(loader), self.step_in_epoch, f"epoch {self.epoch + 1}/{self.config.epochs}",
                        self.config.progress and self.ctx.is_main)
        sums = self.epoch_sums
        for images, labels in loader.epoch(self.epoch, self.step_in_epoch):
            if (interrupt_at is not None and self.global_step == interrupt_at) or self.stop.requested:
                raise KeyboardInterrupt
            step = self._first_compiled_step if self.compile_pending else self._step
            accumulate(sums, *step(images, labels), labels)
            self.global_step += 1
            self.step_in_epoch += 1
            if bar is not None:
                bar.update(1)
                if self.step_in_epoch % 20 == 0 or self.step_in_epoch == len(loader):
                    bar.set_postfix(loss=f"{sums[0].item() / max(sums[2].item(), 1):.3f}",
                                    lr=f"{self.scheduler.get_last_lr()[0]:.4f}")
            if self.config.max_steps is not None and self.global_step >= self.config.max_steps:
                break
        if bar is not None:
            bar.close()
        return self.step_in_epoch >= len(loader)

    def _step(self, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One optimizer step on a batch; returns the loss, logits and targets (all left on the device)."""
        x = self.prepare(images)
        self.regularizer.prepare(self.global_step, seed_for(self.config.seed, MIX, self.ctx.rank, self.global_step))
        with self.autocast():
            logits, targets = self.regularizer(self.train_model, x, labels)
            loss = soft_target_cross_entropy(logits, targets, label_smoothing=self.regularizer.loss_smoothing(targets))
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
        try:
            return self._step(images, labels)
        except Exception as err:
            reason = (str(err).strip().splitlines() or [""])[0][:200]
            self._say(f"torch.compile failed at the first step ({type(err).__name__}: {reason}); training eagerly")
            self.train_model = self.eager_model
            set_rng_state(state)
            return self._step(images, labels)
        finally:
            self.compile_pending = False

    @torch.no_grad()
    def evaluate(self, loader: Any, prefix: str = "val") -> dict[str, float]:
        """Loss and top-1/top-5 error of the model (eval mode, no mixing) on ``loader``, keys ``PREFIX_...``."""
        model = self.model
        model.eval()
        sums = torch.zeros(4, dtype=torch.float64, device=self.ctx.device)  # loss, top-1, top-5 hits, count
        bar = _progress(len(loader), 0, f"evaluating ({prefix})", self.config.progress and self.ctx.is_main)
        for images, labels in loader.epoch(0):
            if bar is not None:
                bar.update(1)
            with self.autocast():
                logits = model(self.prepare(images)).float()
            k = min(5, logits.shape[1])
            top = logits.topk(k, dim=1).indices
            sums += torch.stack([
                torch.nn.functional.cross_entropy(logits, labels, reduction="sum").double(),
                (top[:, 0] == labels).sum().double(),
                (top == labels[:, None]).any(dim=1).sum().double(),
                torch.as_tensor(float(labels.shape[0]), device=sums.device, dtype=torch.float64),
            ])
        if bar is not None:
            bar.close()
        distributed.all_reduce_sum(sums, self.ctx)
        loss, top1, top5, count = sums.tolist()
        return {f"{prefix}_loss": loss / count, f"{prefix}_top1_err": 1 - top1 / count,
                f"{prefix}_top5_err": 1 - top5 / count, f"{prefix}_images": int(count)}

    def run(self, interrupt_at: int | None = None) -> RunResult:
        config, ctx = self.config, self.ctx
        if ctx.is_main:
            self._say(f"run {self.run_dir}: {self.data.info['train']}, val {self.data.info['val']}, "
                      f"model {config.model.name}, mix {config.mix.method}, {config.epochs} epochs of "
                      f"{self.steps_per_epoch} steps x {config.batch_size} x {ctx.world_size} process(es) "
                      f"on {ctx.device} (SGD {self.optim_impl}, channels_last "
                      f"{'on' if self.channels_last else 'off'}{', compiled' if self.compile_pending else ''}"
                      f"{', data on the device' if self.data.info.get('resident') else ''}"
                      f"{f', evaluating every {config.eval_every} epochs' if config.eval_every > 1 else ''})")
        interrupted = False
        self.started = time.perf_counter()
        with self.stop:
            try:
                while self.epoch < config.epochs and self.global_step < self.total_steps:
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
        result = RunResult(self.run_dir, self.metrics, self.best, interrupted)
        if not interrupted and ctx.is_main:
            self._summarise(self.elapsed())
        return result

    def elapsed(self) -> float:
        """Wall-clock seconds of the whole run, over every resumed segment."""
        return self.elapsed_before + time.perf_counter() - self.started

    def _end_epoch(self, seconds: float, images_seen: int, last: bool = False) -> None:
        """Log the epoch, evaluate when due (every ``eval_every`` epochs and after the last), save checkpoints."""
        sums = distributed.all_reduce_sum(self.epoch_sums.clone(), self.ctx)
        top_weight = self.epoch_sums[3].item() / max(self.epoch_sums[2].item(), 1)
        per_rank = distributed.all_gather_floats(top_weight, self.ctx)
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
            "train_loss": sums[0].item() / max(sums[2].item(), 1),
            "train_top1_err": 1 - sums[1].item() / max(sums[2].item(), 1),
            **val,
            "epoch_time_s": round(seconds, 3),
            "train_images_per_s": round(images_seen / max(seconds, 1e-9), 1),
            "mean_top_target_per_rank": [round(v, 6) for v in per_rank],
        }
        self.metrics.append(record)
        improved = due and (self.best is None or val["val_top1_err"] < self.best)
        if improved:
            self.best = val["val_top1_err"]
        self.epoch += 1
        self.step_in_epoch = 0
        self.epoch_sums = torch.zeros_like(self.epoch_sums)
        self.save(best=improved)
        if self.ctx.is_main:
            self._write_metrics()
            self._plot()
            clean = (f", clean train top-1 error {val['train_eval_top1_err']:.2%}" if "train_eval_top1_err" in val
                     else "")
            scores = (f", val top-1 error {val['val_top1_err']:.2%}, top-5 {val['val_top5_err']:.2%}{clean}" if due
                      else "")
            self._say(f"epoch {record['epoch']}: train loss {record['train_loss']:.4f}{scores} "
                      f"({record['train_images_per_s']:.0f} img/s)")

    def _write_metrics(self) -> None:
        tmp = self.run_dir / ".metrics.jsonl.tmp"
        tmp.write_text("".join(json.dumps(m) + "\n" for m in self.metrics))
        tmp.replace(self.run_dir / "metrics.jsonl")

    def _plot(self) -> None:
        try:
            from cutmix.viz.curves import plot_curves
        except ImportError:  # matplotlib is optional
            return
        plot_curves(self.metrics, self.run_dir / "curves.png", title=self.run_dir.name)

    def _summarise(self, seconds: float) -> None:
        evaluated = [m for m in self.metrics if "val_top1_err" in m]
        last = evaluated[-1] if evaluated else {}
        best_epoch = min(evaluated, key=lambda m: m["val_top1_err"])["epoch"] if evaluated else None
        summary = {
            "run_dir": str(self.run_dir),
            "epochs": self.epoch,
            "steps": self.global_step,
            "final_val_top1_err": last.get("val_top1_err"),
            "final_val_top5_err": last.get("val_top5_err"),
            "best_val_top1_err": self.best,
            "best_epoch": best_epoch,
            "final_train_eval_top1_err": last.get("train_eval_top1_err"),
            "channels_last": self.channels_last,
            "wall_time_s": round(seconds, 1),
            "mean_train_images_per_s": round(
                sum(m["train_images_per_s"] for m in self.metrics) / max(len(self.metrics), 1), 1),
        }
        (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        if evaluated:
            print(f"done: {summary['epochs']} epochs, final val top-1 error {summary['final_val_top1_err']:.2%} "
                  f"(best {summary['best_val_top1_err']:.2%} at epoch {best_epoch}), "
                  f"{summary['wall_time_s']:.0f} s -> {self.run_dir}", flush=True)


class StopRequest:
    """Ctrl-C (SIGINT) and SIGTERM (schedulers, preemption, ``kill``) ask the loop to stop at the next step boundary.

    Raising from inside the handler could land anywhere, e.g. between ``optimizer.step()`` and the step counter,
    and the checkpoint would then be one step off. So the first signal only sets ``requested``; the loop checks it
    before each step, where the state is whole, and saves. A second signal stops at once without saving (the last
    complete checkpoint stays in place).
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise ForcedStop(f"signal {signal.Signals(signum).name} twice")
        self.requested = True
        print(f"{signal.Signals(signum).name}: saving after this step (send it again to stop without saving)",
              file=sys.stderr, flush=True)

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)


class ForcedStop(KeyboardInterrupt):
    """A second interrupt: leave immediately, keeping the last complete checkpoint."""


def _progress(total: int, initial: int, desc: str, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=initial, desc=desc, leave=False, dynamic_ncols=True)


def train(config: TrainConfig, resume: str | Path | None = None, *, interrupt_at: int | None = None) -> RunResult:
    """Train from ``config``, or continue the run in ``resume`` (its saved config is used).

    ``interrupt_at`` (a global step) simulates Ctrl-C there: the run saves ``last.pt`` and returns with
    ``interrupted=True``, exactly as a real interruption does.
    """
    checkpoint = None
    if resume is not None:
        run_dir = Path(resume)
        if not (run_dir / "config.json").is_file():
            raise FileNotFoundError(f"--resume {run_dir}: no config.json there (not a cutmix run directory)")
        config = cfg.load(run_dir / "config.json")
        checkpoint = load_checkpoint(run_dir / "last.pt")
    cfg.validate(config)
    ctx = distributed.setup(config.device)
    try:
        if resume is None:
            run_dir = Path(str(distributed.broadcast_object(str(new_run_dir(config)), ctx)))
            if ctx.is_main:
                run_dir.mkdir(parents=True, exist_ok=False)
                cfg.save(config, run_dir / "config.json")
            distributed.barrier(ctx)
        trainer = Trainer(config, ctx, run_dir, checkpoint)
        return trainer.run(interrupt_at)
    finally:
        distributed.teardown(ctx)
