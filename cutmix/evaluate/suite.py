"""`cutmix eval`: every analysis of the paper on one trained run, written to ``eval.json`` and figures.

Suites: ``cls`` (top-1/5 error, per-class accuracy, confusion), ``calib`` (ECE, reliability), ``loc`` (CAM
localisation), ``robust`` (FGSM, occlusion, in-between-class samples), ``ood`` (max-softmax detection). Each
suite's numbers land under its own key of ``eval.json``; the figures go to ``RUN_DIR/eval/``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from cutmix.data import ImageSet
from cutmix.data.imageset import seeded_indices
from cutmix.evaluate import boxsets, calibration, classify, ood, robustness, wsol
from cutmix.evaluate.cam import cam_head
from cutmix.evaluate.common import predict_logits
from cutmix.evaluate.runs import LoadedRun, load_run, open_eval_set
from cutmix.runtime import progress, write_atomic

SUITES = ("cls", "calib", "loc", "robust", "ood")
# figure key in eval.json -> the suite that draws it
FIGURE_SUITES = {"confusion": "cls", "reliability": "calib", "cam": "loc", "occlusion_center": "robust",
                 "occlusion_boundary": "robust", "in_between_mixup": "robust", "in_between_cutmix": "robust",
                 "ood": "ood"}
# what must match for an earlier evaluation's suites to sit beside new ones in one eval.json
SAME_EVALUATION = ("checkpoint", "epoch", "dataset", "samples", "seed")


@dataclass
class EvalOptions:
    """What ``cutmix eval`` measures and on what; the defaults are the paper's protocols at CPU-friendly sizes."""

    suites: tuple[str, ...] = SUITES
    checkpoint: str = "best"  # "best" (falls back to last), "last", or a path to a .pt file
    device: str = "auto"
    batch_size: int = 256
    data: str | None = None  # evaluation set; default: the run's own validation set
    samples: int | None = None  # evaluate a seeded subset of this many images (the same for every run)
    robust_samples: int | None = 2000  # the costly suite (a gradient and ~60 forward sweeps) uses at most this many
    boxes: str | None = None  # "cub:ROOT" or "imagenet:IMAGES_DIR:XML_DIR"; default: the set's own boxes (shapes)
    cam: str = "auto"  # "auto" (CAM where the model has a GAP + linear head, else Grad-CAM) | "cam" | "gradcam"
    cam_threshold: float = 0.15  # the paper's fraction of the map's maximum
    epsilons: tuple[float, ...] = (8 / 255,)  # FGSM step sizes in [0, 1] pixel units
    ood: tuple[str, ...] = ()  # extra out-of-distribution sets: "cifar100", an ImageFolder directory or zip
    ood_samples: int | None = None  # images per OOD set (default: as many as the in-distribution set)
    seed: int = 0
    figures: bool = True
    progress: bool = True


def parse_suites(text: str) -> tuple[str, ...]:
    """``all`` or a comma list of :data:`SUITES`, in canonical order."""
    names = [s.strip() for s in text.split(",") if s.strip()]
    if names == ["all"]:
        return SUITES
    unknown = [s for s in names if s not in SUITES]
    if not names or unknown:
        raise ValueError(f"--suite must be 'all' or a comma list of {', '.join(SUITES)}; got {text!r}")
    return tuple(s for s in SUITES if s in names)


def _model_labels(found: Sequence[str], labels: torch.Tensor, run: LoadedRun, what: str) -> torch.Tensor:
    """``labels`` (indices into ``found``) as indices into the model's classes, matched by name.

    A folder lists its classes alphabetically while a model may have learnt them in another order (the shapes
    generator's, say): the same names in another order are re-indexed, other names are an error.
    """
    if list(found) == list(run.classes):
        return labels
    if sorted(found) != sorted(run.classes):
        raise ValueError(f"{what} has {len(found)} classes ({', '.join(list(found)[:4])}, ...) but the model of "
                         f"{run.run_dir} was trained on {len(run.classes)} ({', '.join(run.classes[:4])}, ...)")
    to_model = torch.tensor([run.classes.index(name) for name in found])
    return to_model[labels]


def _subset(images: torch.Tensor, labels: torch.Tensor, limit: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    # seed 1 (not the validation subsets' 0): the robustness subsets of the committed eval.json files were drawn so
    keep = seeded_indices(images.shape[0], limit, seed=1)
    return images[keep], labels[keep]


class _Stages:
    """One progress bar over the evaluation stages (each stage is batched inside)."""

    def __init__(self, names: list[str], enabled: bool) -> None:
        self.bar = progress(len(names), "eval", enabled=enabled, unit="stage")
        self.seconds: dict[str, float] = {}

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        if self.bar is not None:
            self.bar.set_postfix_str(name)
        start = time.perf_counter()
        result = fn()
        self.seconds[name] = round(time.perf_counter() - start, 2)
        if self.bar is not None:
            self.bar.update(1)
        return result

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _box_source(options: EvalOptions, data: ImageSet, run: LoadedRun) -> boxsets.BoxSet | None:
    """The images with object boxes to localise on: ``--boxes``, else the evaluation set's own (shapes)."""
    size = int(data.images.shape[-1])
    spec = options.boxes
    if spec is None:
        return boxsets.boxset_from_imageset(data) if data.boxes is not None else None
    kind, _, rest = spec.partition(":")
    if kind == "cub" and rest:
        found = boxsets.load_cub(rest, size=size, limit=options.samples)
    elif kind == "imagenet" and ":" in rest:
        images_dir, xml_dir = rest.split(":", 1)
        found = boxsets.load_imagenet_val(images_dir, xml_dir, size=size, classes=run.classes, limit=options.samples)
    else:
        raise ValueError(f"--boxes must be cub:ROOT or imagenet:IMAGES_DIR:XML_DIR, got {spec!r}")
    found.labels = _model_labels(found.classes, found.labels, run, f"--boxes {spec}")
    found.classes = list(run.classes)
    return found


def _cam_method(options: EvalOptions, run: LoadedRun) -> str:
    if options.cam not in ("auto", "cam", "gradcam"):
        raise ValueError(f"--cam must be auto, cam or gradcam, got {options.cam!r}")
    if options.cam != "auto":
        if options.cam == "cam":
            cam_head(run.model)  # a clear error now rather than after the other suites
        return options.cam
    try:
        cam_head(run.model)
        return "cam"
    except ValueError:
        return "gradcam"


def _ood_sets(options: EvalOptions, images: torch.Tensor, run: LoadedRun) -> dict[str, torch.Tensor]:
    """Generated noise, in-distribution images with shuffled pixels, and any set given by name or path."""
    n = min(images.shape[0], options.ood_samples or images.shape[0])
    shape = tuple(images.shape[1:])
    sets = {
        "uniform": ood.uniform_noise(n, shape, seed=options.seed),
        "gaussian": ood.gaussian_noise(n, shape, seed=options.seed + 1),
        "shuffled-pixels": ood.shuffled_pixels(images[:n], seed=options.seed + 2),
    }
    for spec in options.ood:
        other = open_eval_set(run.config, spec, limit=n)
        sets[Path(spec).stem or spec] = ood.fit_to_size(ood.grayscale_to_rgb(other.images), shape[-1])
    return sets


def _loc_summary(result: dict[str, Any], threshold: float) -> dict[str, Any]:
    at = result["results"][0]
    return {"method": result["method"], "threshold": threshold, "num_images": result["num_images"],
            "iou_threshold": result["iou_threshold"], "top1_cls_acc": result["top1_cls_acc"],
            "top1_loc_acc": at["top1_loc_acc"], "gt_known_loc_acc": at["gt_known_loc_acc"],
            "mean_iou": at["mean_iou"], "best": result["best"], "sweep": result["sweep"]}


def _check_options(options: EvalOptions) -> None:
    if not 0 < options.cam_threshold <= 1:
        raise ValueError(f"--cam-threshold must be in (0, 1], got {options.cam_threshold}")
    if any(not math.isfinite(e) or e < 0 for e in options.epsilons):
        raise ValueError(f"--epsilons must be >= 0 (pixel units of [0, 1], e.g. 0.0314 for 8/255), got "
                         f"{options.epsilons}")
    for name in ("samples", "robust_samples", "ood_samples"):
        value = getattr(options, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {value}")


def evaluate_run(run_dir: str | Path, options: EvalOptions | None = None) -> dict[str, Any]:
    """Run the chosen suites on ``run_dir``'s checkpoint; write ``eval.json`` there and figures to ``eval/``."""
    options = options or EvalOptions()
    _check_options(options)
    run = load_run(run_dir, options.checkpoint, options.device)
    torch.manual_seed(options.seed)
    data = open_eval_set(run.config, options.data, options.samples)
    data.labels = _model_labels(data.classes, data.labels, run, f"the evaluation set {options.data or data.name}")
    data.classes = list(run.classes)
    suites = options.suites
    method = _cam_method(options, run) if "loc" in suites else None
    figures = run.run_dir / "eval"
    if options.figures:
        figures.mkdir(exist_ok=True)
    result: dict[str, Any] = {
        "run": run.name, "run_dir": str(run.run_dir), "checkpoint": str(run.checkpoint), "epoch": run.epoch,
        "model": run.config.model.name, "mix": asdict(run.config.mix), "dataset": data.name,
        "samples": len(data), "seed": options.seed, "device": str(run.device), "suites": list(suites),
        "options": {k: v for k, v in asdict(options).items() if k not in ("progress", "figures")},
        "figures": {},
    }
    made: dict[str, str] = result["figures"]
    stages = _Stages([s for s in suites if s != "calib"] + (["logits"] if {"cls", "calib"} & set(suites) else []),
                     options.progress)
    try:
        if {"cls", "calib"} & set(suites):
            logits = stages.run("logits", lambda: predict_logits(run.classifier, data.images, options.batch_size))
            if "cls" in suites:
                result["cls"] = classify.classification_summary(logits, data.labels, run.classes)
                if options.figures:
                    from cutmix.viz.metrics import plot_confusion

                    made["confusion"] = str(plot_confusion(torch.tensor(result["cls"]["confusion"]), run.classes,
                                                           figures / "confusion.png", title=run.name))
            if "calib" in suites:
                result["calib"] = calibration.calibration_summary(logits, data.labels)
                if options.figures:
                    from cutmix.viz.metrics import plot_reliability

                    made["reliability"] = str(plot_reliability({run.name: result["calib"]},
                                                               figures / "reliability.png", title=run.name))
        if "loc" in suites:
            stages.run("loc", lambda: _localisation(run, data, options, method or "cam", result, figures))
        if "robust" in suites:
            images, labels = _subset(data.images, data.labels, options.robust_samples)
            result["robust"] = stages.run("robust", lambda: robustness.robustness_summary(
                run.classifier, images, labels, epsilons=options.epsilons, seed=options.seed,
                batch_size=options.batch_size))
            if options.figures:
                made.update(_robust_figures(result["robust"], run.name, figures))
        if "ood" in suites:
            stages.run("ood", lambda: _ood(run, data, options, result, figures))
    finally:
        stages.close()
    result["seconds"] = stages.seconds
    result["options_by_suite"] = {suite: result["options"] for suite in suites}
    path = run.run_dir / "eval.json"
    earlier = _read_earlier(path)
    if earlier is not None:
        result = merge_results(earlier, result)
        _remove_stale_figures(earlier, result)
    write_atomic(path, json.dumps(result, indent=1))
    return result


def _read_earlier(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        earlier = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {"suites": [], "unreadable": True}
    return earlier if isinstance(earlier, dict) else {"suites": [], "unreadable": True}


def merge_results(earlier: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``new`` with the suites of an ``earlier`` eval.json that it did not run, when both measured the same
    checkpoint on the same images (:data:`SAME_EVALUATION`); otherwise the earlier suites are dropped, since one
    file must not mix two models. ``merge`` records what was replaced, kept and dropped."""
    before = [s for s in earlier.get("suites", []) if s in SUITES]
    others = [s for s in before if s not in new["suites"]]
    same = all(earlier.get(k) == new.get(k) for k in SAME_EVALUATION)
    kept = others if same else []
    merged = dict(new)
    for suite in kept:
        merged[suite] = earlier.get(suite)
        if suite in (earlier.get("skipped") or {}):
            merged.setdefault("skipped", {})[suite] = earlier["skipped"][suite]
    merged["suites"] = [s for s in SUITES if s in new["suites"] or s in kept]
    merged["figures"] = {**{k: v for k, v in (earlier.get("figures") or {}).items() if FIGURE_SUITES.get(k) in kept},
                         **new["figures"]}
    stage_of = {"cls": "logits", "calib": "logits"}
    old_seconds = earlier.get("seconds") or {}
    merged["seconds"] = {**{stage_of.get(s, s): old_seconds[stage_of.get(s, s)] for s in kept
                            if stage_of.get(s, s) in old_seconds and stage_of.get(s, s) not in new["seconds"]},
                         **new["seconds"]}
    old_options = earlier.get("options_by_suite") or {}
    merged["options_by_suite"] = {**{s: old_options.get(s, earlier.get("options")) for s in kept},
                                  **new["options_by_suite"]}
    merged["merge"] = {"replaced": [s for s in new["suites"] if s in before], "kept": kept,
                       "dropped": [] if same else others, "unreadable": bool(earlier.get("unreadable"))}
    if not same:
        differ = [k for k in SAME_EVALUATION if earlier.get(k) != new.get(k)]
        merged["merge"]["dropped_because"] = ", ".join(f"{k} {earlier.get(k)!r} -> {new.get(k)!r}" for k in differ)
    return merged


def _remove_stale_figures(earlier: dict[str, Any], merged: dict[str, Any]) -> None:
    """Delete figure files of the earlier evaluation that the merged eval.json no longer lists (a suite re-run
    without figures, or dropped), so the figures folder never shows numbers the file does not hold."""
    current = {str(Path(p)) for p in merged["figures"].values()}
    for path in (earlier.get("figures") or {}).values():
        if str(Path(path)) not in current:
            Path(path).unlink(missing_ok=True)


def _localisation(run: LoadedRun, data: ImageSet, options: EvalOptions, method: str, result: dict[str, Any],
                  figures: Path) -> None:
    source = _box_source(options, data, run)
    if source is None:
        if options.suites == SUITES:  # "all": skip what this dataset cannot support, say why
            result["loc"] = None
            result.setdefault("skipped", {})["loc"] = (f"{data.name} has no object boxes; pass --boxes "
                                                       "cub:ROOT or imagenet:IMAGES_DIR:XML_DIR")
            return
        raise ValueError(f"--suite loc needs object boxes, and {data.name} has none: pass --boxes cub:ROOT or "
                         "imagenet:IMAGES_DIR:XML_DIR (the builtin shapes dataset has its own)")
    examples = 16 if options.figures else 0
    found = wsol.evaluate_localization(run.model, source.images, source.labels, source.boxes, source.valid,
                                       run.mean, run.std, (options.cam_threshold,), options.batch_size, method,
                                       examples=examples)
    result["loc"] = _loc_summary(found, options.cam_threshold)
    if examples:
        from cutmix.viz.cam import overlay_titles, plot_cam_overlays

        ex = found["examples"]
        k = ex["cams"].shape[0]
        titles = overlay_titles(run.classes, source.labels[:k], ex["predictions"], ex["ious"])
        result["figures"]["cam"] = str(plot_cam_overlays(source.images[:k], ex["cams"], source.boxes[:k],
                                                         source.valid[:k], ex["boxes"], titles,
                                                         figures / "cam.png"))


def _robust_figures(robust: dict[str, Any], name: str, figures: Path) -> dict[str, str]:
    from cutmix.viz.robustness import ROBUST_FIGURES, plot_curves_by_run

    made = {}
    for fig in ROBUST_FIGURES:
        curve = fig.curve(robust)
        if curve is not None:
            made[fig.key] = str(plot_curves_by_run({name: curve}, figures / f"{fig.key}.png", xlabel=fig.xlabel,
                                                   ylabel=fig.ylabel, title=fig.title))
    return made


def _ood(run: LoadedRun, data: ImageSet, options: EvalOptions, result: dict[str, Any], figures: Path) -> None:
    found = ood.evaluate_ood(run.classifier, data.images, _ood_sets(options, data.images, run), options.batch_size)
    result["ood"] = found.metrics
    if options.figures:
        from cutmix.viz.robustness import plot_score_histograms

        result["figures"]["ood"] = str(plot_score_histograms(found.scores_in, found.scores_out,
                                                             figures / "ood_scores.png", title=run.name))


def describe(result: dict[str, Any]) -> str:
    """The headline numbers of an evaluation, one line per suite."""
    lines = [f"{result['run']} (epoch {result['epoch']}, {result['samples']} images of {result['dataset']}):"]
    if result.get("cls"):
        lines.append(f"  top-1 error {result['cls']['top1_err']:.2%}, top-5 {result['cls']['top5_err']:.2%}")
    if result.get("calib"):
        c = result["calib"]
        lines.append(f"  ECE {c['ece']:.2%}, mean confidence {c['mean_confidence']:.2%} vs accuracy "
                     f"{c['accuracy']:.2%}")
    if result.get("loc"):
        loc = result["loc"]
        lines.append(f"  localisation ({loc['method']}, {loc['threshold']}·max): top-1 loc {loc['top1_loc_acc']:.2%}"
                     f", GT-known {loc['gt_known_loc_acc']:.2%} (best threshold {loc['best']['threshold']}: "
                     f"GT-known {loc['best']['gt_known_loc_acc']:.2%})")
    if result.get("robust"):
        r = result["robust"]
        fg = ", ".join(f"ε={255 * e:.0f}/255 {1 - a:.2%}" for e, a in zip(r["fgsm"]["epsilons"],
                                                                          r["fgsm"]["accuracy"], strict=True))
        lines.append(f"  FGSM top-1 error: {fg}")
    if result.get("ood"):
        avg = result["ood"].get("average", {})
        lines.append(f"  OOD (mean over sets): TNR@TPR95 {avg.get('tnr_at_tpr95', float('nan')):.2%}, "
                     f"AUROC {avg.get('auroc', float('nan')):.2%}")
    for suite, why in (result.get("skipped") or {}).items():
        lines.append(f"  {suite} skipped: {why}")
    merge = result.get("merge")
    if merge:
        parts = []
        if merge["unreadable"]:
            parts.append("replaced an unreadable eval.json")
        if merge["replaced"]:
            parts.append(f"replaced {', '.join(merge['replaced'])}")
        if merge["kept"]:
            parts.append(f"kept {', '.join(merge['kept'])} from the earlier evaluation")
        if merge["dropped"]:
            parts.append(f"dropped {', '.join(merge['dropped'])} (measured otherwise: {merge['dropped_because']})")
        if parts:
            lines.append(f"  eval.json: {'; '.join(parts)}")
    return "\n".join(lines)
