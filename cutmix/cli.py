"""``cutmix train | eval | report | show | bench``: parse, build a config, call the library. Nothing else lives here."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

# flag -> (section, key) in the training config; flags default to None so that only given ones override a preset
TRAIN_FLAGS: dict[str, tuple[str | None, str]] = {
    "data": ("data", "dataset"),
    "val_data": ("data", "val"),
    "data_root": ("data", "root"),
    "download": ("data", "download"),
    "augment": ("data", "augment"),
    "image_size": ("data", "image_size"),
    "workers": ("data", "num_workers"),
    "train_samples": ("data", "train_samples"),
    "val_samples": ("data", "val_samples"),
    "train_eval_samples": ("data", "train_eval_samples"),
    "skip_corrupt": ("data", "skip_corrupt"),
    "resident": ("data", "resident"),
    "pad_mode": ("data", "pad_mode"),
    "model": ("model", "name"),
    "mix": ("mix", "method"),
    "alpha": ("mix", "alpha"),
    "prob": ("mix", "prob"),
    "schedule": ("mix", "schedule"),
    "per_sample": ("mix", "per_sample"),
    "box": ("mix", "box"),
    "placement": ("mix", "placement"),
    "label": ("mix", "label"),
    "cutout_size": ("mix", "cutout_size"),
    "mixup_alpha": ("mix", "mixup_alpha"),
    "switch_prob": ("mix", "switch_prob"),
    "layers": ("mix", "layers"),
    "lr": ("optim", "lr"),
    "lr_schedule": ("optim", "schedule"),
    "weight_decay": ("optim", "weight_decay"),
    "warmup_epochs": ("optim", "warmup_epochs"),
    "label_smoothing": ("optim", "label_smoothing"),
    "optim_impl": ("optim", "impl"),
    "epochs": (None, "epochs"),
    "batch_size": (None, "batch_size"),
    "eval_batch_size": (None, "eval_batch_size"),
    "eval_every": (None, "eval_every"),
    "seed": (None, "seed"),
    "device": (None, "device"),
    "amp": (None, "amp"),
    "channels_last": (None, "channels_last"),
    "compile": (None, "compile"),
    "out": (None, "out"),
    "name": (None, "name"),
    "max_steps": (None, "max_steps"),
    "threads": (None, "threads"),
}


def _train_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "train",
        help="train a classifier with CutMix or another regulariser",
        description="Train a classifier with a regulariser. Defaults: the builtin 'shapes' dataset, ResNet-20, "
        "CutMix (alpha 1, prob 0.5), a few CPU minutes. Precedence: defaults < --preset < flags < --set.",
        epilog="examples:\n"
        "  cutmix train                                   # shapes, CutMix, CPU minutes\n"
        "  cutmix train --mix none                        # the baseline\n"
        "  cutmix train --preset cifar10-resnet18 --data ../shared/data/cifar10-jpeg/cifar10-train.zip \\\n"
        "               --val-data ../shared/data/cifar10-jpeg/cifar10-test.zip\n"
        "  cutmix train --resume runs/shapes-resnet20-cutmix-s0\n"
        "  torchrun --nproc-per-node 2 -m cutmix train --preset cifar10-resnet18",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = p.add_argument_group("run")
    g.add_argument("--preset", help="a preset name (see --list-presets) or a .toml file")
    g.add_argument("--list-presets", action="store_true", help="print the presets and exit")
    g.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last.pt")
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any setting, e.g. --set optim.lr=0.05 --set model.kwargs.alpha=48 (repeatable)")
    g.add_argument("--print-config", action="store_true", help="print the resolved configuration and exit")
    g.add_argument("--epochs", type=int)
    g.add_argument("--batch-size", type=int, help="per process")
    g.add_argument("--eval-batch-size", type=int)
    g.add_argument("--eval-every", type=int, metavar="N", help="evaluate every N epochs and after the last (default 1)")
    g.add_argument("--seed", type=int)
    g.add_argument("--device", help="auto (default), cpu, cuda, cuda:1 ...")
    g.add_argument("--amp", choices=["none", "bf16", "fp16"], help="autocast on CUDA")
    g.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="NHWC memory format (default: on for a CPU, on CUDA with --amp)")
    g.add_argument("--compile", action="store_const", const=True, default=None, help="torch.compile the model")
    g.add_argument("--threads", type=int, help="CPU threads")
    g.add_argument("--out", help="parent directory of run directories (default: runs)")
    g.add_argument("--name", help="run directory name (default: dataset-model-mix-sSEED)")
    g.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")

    g = p.add_argument_group("data")
    g.add_argument("--data", help="shapes (default), cifar10, cifar100, or an ImageFolder directory / zip")
    g.add_argument("--val-data", help="validation set (default: the dataset's own test split)")
    g.add_argument("--data-root", help="directory of torchvision's CIFAR files (default: data)")
    g.add_argument("--download", action="store_const", const=True, default=None, help="download CIFAR if absent")
    g.add_argument("--augment", choices=["auto", "crop-flip", "imagenet", "none"])
    g.add_argument("--image-size", type=int)
    g.add_argument("--workers", type=int, help="DataLoader workers for per-image decoding (ImageNet-style sets)")
    g.add_argument("--train-samples", type=int, help="use (or generate) only this many training images (a seeded "
                   "subset keeping each class's share)")
    g.add_argument("--val-samples", type=int)
    g.add_argument("--train-eval-samples", type=int, metavar="N", help="also evaluate N training images, unaugmented "
                   "and unmixed, at each evaluation (the train/validation gap)")
    g.add_argument("--skip-corrupt", action="store_const", const=True, default=None,
                   help="skip unreadable images (counted) instead of stopping")
    g.add_argument("--resident", choices=["auto", "on", "off"],
                   help="hold in-memory sets on the training device and augment there (auto: on CUDA when the set "
                   "fits in a quarter of the free memory)")
    g.add_argument("--pad-mode", choices=["zeros", "reflect"], help="padding of the random crop (default zeros)")

    g = p.add_argument_group("model")
    g.add_argument("--model", help="resnet20 (default), preact_resnet18, pyramidnet200, tv:resnet50, timm:NAME ...")

    g = p.add_argument_group("regulariser")
    g.add_argument("--mix", choices=["none", "cutmix", "mixup", "cutout", "cutmix+mixup", "feature-cutmix",
                                     "manifold-mixup"])
    g.add_argument("--alpha", type=float, help="Beta(alpha, alpha) of CutMix (or of Mixup with --mix mixup)")
    g.add_argument("--prob", type=float, help="chance to mix a batch (a sample with --per-sample)")
    g.add_argument("--schedule", choices=["constant", "linear"], help="linear: prob grows from 0 (Scheduled CutMix)")
    g.add_argument("--per-sample", action="store_const", const=True, default=None, help="a box and lambda per sample")
    g.add_argument("--box", choices=["uniform", "gaussian", "fixed"])
    g.add_argument("--placement", choices=["clip", "inside"])
    g.add_argument("--label", choices=["area", "onehot", "complete"])
    g.add_argument("--cutout-size", type=int)
    g.add_argument("--mixup-alpha", type=float)
    g.add_argument("--switch-prob", type=float, help="cutmix+mixup: chance of Mixup per batch")
    g.add_argument("--layers", type=lambda s: s.split(","), help="feature-level mixing layers, comma-separated "
                   "('' or input = the images)")

    g = p.add_argument_group("optimisation")
    g.add_argument("--lr", type=float)
    g.add_argument("--lr-schedule", choices=["cosine", "step", "constant"])
    g.add_argument("--weight-decay", type=float)
    g.add_argument("--warmup-epochs", type=float)
    g.add_argument("--label-smoothing", type=float)
    g.add_argument("--optim-impl", choices=["auto", "fused", "foreach", "loop"],
                   help="SGD kernels (auto: fused on CUDA, the plain loop on CPU)")
    return p


def build_config(args: argparse.Namespace):
    from cutmix.train import config as cfg

    config = cfg.TrainConfig()
    if args.preset:
        cfg.apply(config, cfg.load_preset(args.preset), f"preset {args.preset}")
    for flag, (section, key) in TRAIN_FLAGS.items():
        value = getattr(args, flag, None)
        if value is None:
            continue
        cfg.set_value(config if section is None else getattr(config, section), key, value, f"--{flag}")
    if args.no_progress:
        config.progress = False
    for override in args.set:
        cfg.apply_override(config, override)
    return cfg.validate(config)


def cmd_train(args: argparse.Namespace) -> int:
    from cutmix.train import config as cfg
    from cutmix.train.engine import train

    if args.list_presets:
        for name in cfg.preset_names():
            print(name)
        return 0
    if args.resume:
        result = train(None, resume=args.resume)  # type: ignore[arg-type]
        return 130 if result.interrupted else 0
    config = build_config(args)
    if args.print_config:
        print(json.dumps(cfg.to_dict(config), indent=2))
        return 0
    result = train(config)
    return 130 if result.interrupted else 0


def _show_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("show", help="draw a batch under each regulariser, with its targets",
                       description="Draw the same images under each regulariser (none, Cutout, Mixup, CutMix and "
                       "its variants) with the targets under every image, to a PNG.")
    p.add_argument("--data", default="shapes", help="shapes (default), cifar10, cifar100, or a directory / zip")
    p.add_argument("--split", default="val")
    p.add_argument("--data-root", default="data")
    p.add_argument("-n", "--num-images", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="mixes.png", help="output PNG (default: mixes.png)")
    return p


def show_rows(images, labels, num_classes: int, seed: int) -> dict:
    """Each regulariser applied to the same uint8 batch, every image mixed with the next one (explicit draws)."""
    import torch

    from cutmix import functional as F
    from cutmix import sampling
    from cutmix.boxes import place_boxes, sample_boxes, sample_centres

    n, _, h, w = images.shape
    index = torch.arange(n).roll(-1)  # image i gets its partner from image i + 1

    def g():
        return torch.Generator().manual_seed(seed)

    def cutmix_row(**kwargs):
        label = kwargs.pop("label", "area")
        boxes = sample_boxes(n, h, w, generator=g(), **kwargs)
        return F.cutmix(images, labels, boxes=boxes, index=index, num_classes=num_classes, label=label)

    side = max(1, min(h, w) // 2)
    cutout_boxes = place_boxes(sample_centres(n, h, w, generator=g()), torch.tensor([[side, side]]).expand(n, 2), h, w)
    return {
        "none": (images, F.one_hot(labels, num_classes)),
        f"Cutout {side}px": F.cutout(images, labels, boxes=cutout_boxes, num_classes=num_classes),
        "Mixup": F.mixup(images, labels, lam=sampling.beta(1.0, n, g()), index=index, num_classes=num_classes),
        "CutMix": cutmix_row(),
        "CutMix inside": cutmix_row(placement="inside"),
        "CutMix Gaussian": cutmix_row(kind="gaussian"),
        "CutMix fixed": cutmix_row(kind="fixed", placement="inside"),
        "CutMix one-hot": cutmix_row(label="onehot"),
        "CutMix complete": cutmix_row(label="complete"),
    }


def cmd_show(args: argparse.Namespace) -> int:
    import torch

    from cutmix import data as cdata
    from cutmix.viz.grid import mix_grid

    if args.num_images < 2:
        raise SystemExit("cutmix show: --num-images must be at least 2 (mixing needs partners)")
    dataset = cdata.open_dataset(args.data, args.split, root=args.data_root)
    if not isinstance(dataset, cdata.ImageSet):
        raise SystemExit(f"cutmix show: {args.data} has images of different sizes; show needs one size")
    pick = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(args.seed))[: args.num_images]
    images, labels = dataset.images[pick], dataset.labels[pick]
    rows = show_rows(images, labels, len(dataset.classes), args.seed)
    title = f"{args.data}: each image mixed with the next one, targets below"
    path = mix_grid(rows, dataset.classes, args.out, title=title)
    print(f"wrote {path}")
    return 0


def _fraction(text: str) -> float:
    """``8/255`` or ``0.0314``."""
    num, _, den = text.partition("/")
    try:
        return float(num) / float(den) if den else float(num)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"expected a number or a fraction like 8/255, got {text!r}") from None


def _eval_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("eval", help="the paper's evaluations of a trained run",
                       description="Evaluate a trained run: top-1/5 error, calibration, CAM localisation, FGSM / "
                       "occlusion / in-between-class robustness and out-of-distribution detection. Writes "
                       "RUN_DIR/eval.json and figures in RUN_DIR/eval/.")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--suite", default="all", help="all (default) or a comma list of cls,calib,loc,robust,ood")
    p.add_argument("--checkpoint", default="best", help="best (default; last.pt if there is no best.pt), last, "
                   "or a path to a .pt file")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--data", default=None, help="evaluation set (default: the run's validation set)")
    p.add_argument("--samples", type=int, default=None, help="evaluate a seeded subset of this many images")
    p.add_argument("--robust-samples", type=int, default=2000, help="images for the robustness suite (default 2000)")
    p.add_argument("--boxes", default=None, help="object boxes for localisation: cub:ROOT or "
                   "imagenet:IMAGES_DIR:XML_DIR (shapes has its own)")
    p.add_argument("--cam", choices=["auto", "cam", "gradcam"], default="auto",
                   help="auto: CAM for models with a pooling + linear head, Grad-CAM otherwise")
    p.add_argument("--cam-threshold", type=float, default=0.15, help="box threshold as a fraction of the map's max")
    p.add_argument("--epsilons", type=_fraction, nargs="+", default=[8 / 255], metavar="EPS",
                   help="FGSM step sizes in [0, 1] pixel units, e.g. 2/255 8/255 (default 8/255)")
    p.add_argument("--ood", nargs="*", default=[], metavar="SET",
                   help="extra out-of-distribution sets (cifar100, an ImageFolder directory or zip); uniform and "
                   "Gaussian noise and pixel-shuffled images are always used")
    p.add_argument("--ood-samples", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="CPU threads (small-image evaluation is often fastest "
                   "with 1)")
    p.add_argument("--no-figures", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    return p


def cmd_eval(args: argparse.Namespace) -> int:
    import torch

    from cutmix.evaluate.suite import EvalOptions, describe, evaluate_run, parse_suites

    if args.threads:
        torch.set_num_threads(args.threads)
    options = EvalOptions(
        suites=parse_suites(args.suite), checkpoint=args.checkpoint, device=args.device, batch_size=args.batch_size,
        data=args.data, samples=args.samples, robust_samples=args.robust_samples, boxes=args.boxes, cam=args.cam,
        cam_threshold=args.cam_threshold, epsilons=tuple(args.epsilons), ood=tuple(args.ood),
        ood_samples=args.ood_samples, seed=args.seed, figures=not args.no_figures, progress=not args.no_progress)
    for run_dir in args.run_dirs:
        print(describe(evaluate_run(run_dir, options)), flush=True)
    return 0


def _report_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("report", help="evaluated runs side by side (markdown tables + overlaid curves)",
                       description="Put several evaluated runs (cutmix eval) side by side: the paper's tables as "
                       "markdown and overlaid curves, written to OUT/report.md.")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--out", default="report", help="output directory (default: report)")
    p.add_argument("--title", default="")
    p.add_argument("--no-figures", action="store_true")
    return p


def cmd_report(args: argparse.Namespace) -> int:
    from cutmix.evaluate.report import write_report

    command = "cutmix report " + " ".join(args.run_dirs) + f" --out {args.out}"
    path = write_report(args.run_dirs, args.out, title=args.title, figures=not args.no_figures, command=command)
    print(path.read_text())
    print(f"wrote {path}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cutmix", description="CutMix and friends: train, evaluate, show, "
                                     "benchmark.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,eval,report,show,bench}")
    _train_parser(sub)
    _eval_parser(sub)
    _report_parser(sub)
    _show_parser(sub)
    sub.add_parser("bench", help="op benchmarks (cutmix bench --help) and CutMix's share of a training step "
                   "(cutmix bench step --help)", add_help=False)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["bench", "step"]:
        from cutmix.bench.step import main as step_main

        return step_main(argv[2:])
    if argv[:1] == ["bench"]:
        from cutmix.bench.ops import main as bench_main

        return bench_main(argv[1:])
    args = parser.parse_args(argv)
    try:
        commands = {"train": cmd_train, "eval": cmd_eval, "report": cmd_report, "show": cmd_show}
        return commands[args.command](args)
    except (ValueError, FileNotFoundError) as err:
        print(f"cutmix {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
