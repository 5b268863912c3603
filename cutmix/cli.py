"""``cutmix train | eval | report | show | bench``: parse, build a config, call the library. Nothing else lives here."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

GROUPS = {None: "run", "data": "data", "model": "model", "mix": "regulariser", "optim": "optimisation"}
KIND_METAVARS = {"int": "N", "float": "X", "str": "TEXT", "list[str]": "A,B", "list[float]": "X,Y"}


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one line on stderr (the usage is in ``--help``), exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _flag_type(s):
    """The argparse ``type`` of a setting's flag: parsed by the field's type, then its choices and range checked."""
    from cutmix.run.settings import SettingError, check, parse

    def convert(text: str):
        try:
            value = parse(s, text, s.path)
            check(s, value, s.path)
        except SettingError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
        return value

    convert.__name__ = s.kind
    return convert


def add_setting_flags(p: argparse.ArgumentParser, groups: dict[str | None, argparse._ArgumentGroup]) -> None:
    """One flag per declared setting that has one, in its section's group, its help ending with the default."""
    from cutmix.run import config as cfg
    from cutmix.run.settings import help_text

    groups = {section: groups.get(section) or p.add_argument_group(title) for section, title in GROUPS.items()}
    for s in cfg.all_settings().values():
        if s.spec.flag is None:
            continue
        common = {"dest": s.path, "default": None, "help": help_text(s)}
        if s.kind == "bool":
            groups[s.section].add_argument(s.spec.flag, action=argparse.BooleanOptionalAction, **common)
            continue
        metavar = s.spec.metavar or ("{" + ",".join(s.spec.choices) + "}" if s.spec.choices else
                                     KIND_METAVARS[s.kind])
        groups[s.section].add_argument(s.spec.flag, type=_flag_type(s), metavar=metavar, **common)


def _train_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "train",
        help="train a classifier with CutMix or another regulariser",
        description="Train a classifier with a regulariser. Defaults: the builtin 'shapes' dataset, ResNet-20, "
        "CutMix (alpha 1, prob 0.5), a few CPU minutes. Precedence: defaults < --preset < flags < --set. Every "
        "setting has a key for --set (cutmix train --print-config shows them all).",
        epilog="examples:\n"
        "  cutmix train                                   # shapes, CutMix, CPU minutes\n"
        "  cutmix train --mix none                        # the baseline\n"
        "  cutmix train --preset cifar10-resnet18 --data ../shared/data/cifar10-jpeg/cifar10-train.zip \\\n"
        "               --val-data ../shared/data/cifar10-jpeg/cifar10-test.zip\n"
        "  cutmix train --model pyramidnet110 --set model.kwargs.alpha=48\n"
        "  cutmix train --resume runs/shapes-resnet20-cutmix-s0 --epochs 12   # continue, and extend to 12 epochs\n"
        "  torchrun --nproc-per-node 2 -m cutmix train --preset cifar10-resnet18",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = p.add_argument_group("run")
    g.add_argument("--preset", help="a preset name (see --list-presets) or a .toml file")
    g.add_argument("--list-presets", action="store_true", help="print the presets, one line each, and exit")
    g.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last.pt; only --epochs, --threads, "
                   "--progress, --eval-every, --save-every and --ddp-timeout may change")
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any setting, e.g. --set optim.lr=0.05 --set model.kwargs.alpha=48 (repeatable)")
    g.add_argument("--print-config", action="store_true", help="print the resolved configuration and exit")
    add_setting_flags(p, {None: g})
    add_timm_aliases(p)
    return p


def add_timm_aliases(p: argparse.ArgumentParser) -> None:
    """timm ``train.py``'s mixing flags, accepted as aliases of ours (see :func:`timm_alias_settings`)."""
    from cutmix.integrations.timm_flags import timm_flags

    g = p.add_argument_group("timm aliases", "timm train.py's mixing flags, mapped onto the settings above with "
                             "timm's defaults (--mixup-prob 1, --smoothing 0.1) where they apply")
    for f in timm_flags():
        g.add_argument(f.flag, dest=f"timm_{f.dest}", type=f.type, nargs=f.nargs, default=None,
                       metavar={str: "MODE", int: "N"}.get(f.type, "X"), help=f"{f.help} (timm default: {f.default})")


# Settings a timm alias may set, so that giving both spellings is refused rather than one silently winning.
TIMM_TARGETS = ("mix.method", "mix.alpha", "mix.mixup_alpha", "mix.prob", "mix.switch_prob", "mix.per_sample",
                "optim.label_smoothing")


def timm_alias_settings(args: argparse.Namespace) -> dict[str, object]:
    """The settings timm's flags ask for, as timm's ``train.py`` builds its ``Mixup`` from them.

    ``--cutmix A`` alone is CutMix with alpha A, ``--mixup A`` alone Mixup, both the per-batch switch of
    ``cutmix+mixup`` (timm's ``--mixup-switch-prob`` is the chance of CutMix; ours is the chance of Mixup);
    ``--mixup-mode elem`` mixes per sample. What has no exact counterpart here is refused by name.
    """
    from cutmix.integrations.timm_flags import timm_flags
    from cutmix.train.errors import UsageError

    given = {f.dest: getattr(args, f"timm_{f.dest}") for f in timm_flags() if getattr(args, f"timm_{f.dest}", None)
             is not None}
    if not given:
        return {}
    for dest, why in (("cutmix_minmax", "its boxes come from Beta(alpha, alpha) (--box fixed gives a fixed side)"),
                      ("mixup_off_epoch", "its mixing schedules are --schedule constant|linear")):
        if given.get(dest) not in (None, 0):
            raise UsageError(f"--{dest.replace('_', '-')}: cutmix train has no equivalent ({why}); "
                             "cutmix.integrations.timm.Mixup supports it in your own loop")
    mode = given.get("mixup_mode", "batch")
    if mode not in ("batch", "elem"):
        raise UsageError(f"--mixup-mode {mode}: cutmix train mixes per batch or per sample (batch, elem); "
                         "cutmix.integrations.timm.Mixup supports 'pair'")
    mixup, cut = given.get("mixup", 0.0), given.get("cutmix", 0.0)
    out: dict[str, object] = {}
    if cut > 0 and mixup > 0:
        out = {"mix.method": "cutmix+mixup", "mix.alpha": cut, "mix.mixup_alpha": mixup,
               "mix.switch_prob": 1.0 - given.get("mixup_switch_prob", 0.5)}
    elif cut > 0 or mixup > 0:
        out = {"mix.method": "cutmix" if cut > 0 else "mixup", "mix.alpha": cut if cut > 0 else mixup}
    else:
        unused = sorted(set(given) - {"mixup", "cutmix", "smoothing"})
        if unused:
            raise UsageError(f"--{unused[0].replace('_', '-')} has no effect without --mixup or --cutmix > 0 "
                             "(as in timm)")
    if out:
        out.update({"mix.prob": given.get("mixup_prob", 1.0), "mix.per_sample": mode == "elem",
                    "optim.label_smoothing": given.get("smoothing", 0.1)})
    elif "smoothing" in given:
        out["optim.label_smoothing"] = given["smoothing"]
    return out


def given_settings(args: argparse.Namespace) -> dict[str, object]:
    """The settings the command line gives, by path: flags first, then ``--set`` in order (later ones win)."""
    from cutmix.run import config as cfg

    given = {path: getattr(args, path) for path in cfg.all_settings() if getattr(args, path, None) is not None}
    aliases = timm_alias_settings(args)
    both = sorted(set(aliases) & set(given) & set(TIMM_TARGETS))
    if both:
        from cutmix.train.errors import UsageError

        flags = ", ".join(cfg.all_settings()[path].spec.flag or path for path in both)
        raise UsageError(f"{flags} and timm's mixing flags both set the regulariser: use one spelling")
    given.update(aliases)
    for text in args.set:
        key, value = cfg.parse_override(text)
        given[key] = value
    return given


def build_config(args: argparse.Namespace):
    from cutmix.run import config as cfg

    config = cfg.TrainConfig()
    if args.preset:
        cfg.apply(config, cfg.load_preset(args.preset), f"preset {args.preset}")
    for path, value in given_settings(args).items():
        cfg.put(config, path, value, path)
    return cfg.validate(config)


def cmd_train(args: argparse.Namespace) -> int:
    """Train, resume, or print the presets or the resolved configuration (those two, and a bad setting, answer
    before the training modules, and with them torch, are imported)."""
    from cutmix.run import config as cfg

    if args.list_presets:
        names = cfg.preset_names()
        width = max(map(len, names))
        for name in names:
            print(f"{name:<{width}}  {cfg.preset_description(name)}")
        return 0
    if args.resume:
        if args.preset:
            raise ValueError("--preset cannot be combined with --resume: a run keeps its own settings")
        changes = given_settings(args)
        from cutmix.train.engine import plan_resume, train

        if args.print_config:
            print(json.dumps(cfg.to_dict(plan_resume(args.resume, changes).config), indent=2))
            return 0
        result = train(None, resume=args.resume, changes=changes)
        return 130 if result.interrupted else 0
    config = build_config(args)
    if args.print_config:
        print(json.dumps(cfg.to_dict(cfg.resolve_paths(config)), indent=2))
        return 0
    from cutmix.train.engine import train

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


def cmd_show(args: argparse.Namespace) -> int:
    import torch

    from cutmix import data as cdata
    from cutmix.viz.grid import mix_grid, regulariser_rows

    if args.num_images < 2:
        raise ValueError(f"--num-images must be at least 2 (mixing needs partners), got {args.num_images}")
    dataset = cdata.open_dataset(args.data, args.split, root=args.data_root)
    if not isinstance(dataset, cdata.ImageSet):
        raise ValueError(f"--data {args.data} has images of different sizes; show needs one size")
    pick = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(args.seed))[: args.num_images]
    images, labels = dataset.images[pick], dataset.labels[pick]
    rows = regulariser_rows(images, labels, len(dataset.classes), args.seed)
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


BENCH_HELP = "op benchmarks (cutmix bench --help) and CutMix's share of a training step (cutmix bench step --help)"


def _bench_parser(sub: argparse._SubParsersAction, *, arguments: bool) -> argparse.ArgumentParser:
    """``cutmix bench [OPTIONS]`` (the op benchmarks) with the subcommand ``cutmix bench step [OPTIONS]``.

    The flags come from the benchmark modules, which import torch, so they are added only when the command line
    names ``bench`` (``arguments``): ``cutmix --help`` and the other commands parse without torch.
    """
    if not arguments:
        return sub.add_parser("bench", help=BENCH_HELP)
    from cutmix.bench import ops, step

    p = sub.add_parser("bench", help=BENCH_HELP, description=(ops.__doc__ or "").split("\n\n")[0],
                       epilog="cutmix bench step [OPTIONS]: CutMix's share of a whole training step (see cutmix "
                       "bench step --help)")
    ops.add_arguments(p)
    p.set_defaults(bench_run=ops.run_cli, bench_parser=p)
    steps = p.add_subparsers(dest="bench_command", metavar="{step}")
    q = steps.add_parser("step", help="CutMix's share of a whole training step",
                         description=(step.__doc__ or "").split("\n\n")[0])
    step.add_arguments(q)
    q.set_defaults(bench_run=step.run_cli, bench_parser=q)
    return p


def cmd_bench(args: argparse.Namespace) -> int:
    return args.bench_run(args, args.bench_parser)


def _one_line(err: BaseException) -> str:
    """An exception as one line: an OSError names its file, a multi-line message is joined."""
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        return f"{err.filename}: {err.strerror}"
    text = str(err).strip() or type(err).__name__
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def main(argv: Sequence[str] | None = None) -> int:
    """Run a subcommand. A user's mistake is one line on stderr and exit status 2, a failure of the machine (a full
    disk, a stalled DDP rank) one line and status 1; neither prints a traceback."""
    from cutmix.train.errors import RunFailure, UsageError

    parser = Parser(prog="cutmix", description="CutMix and friends: train, evaluate, show, benchmark.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,eval,report,show,bench}")
    _train_parser(sub)
    _eval_parser(sub)
    _report_parser(sub)
    _show_parser(sub)
    argv = list(sys.argv[1:] if argv is None else argv)
    _bench_parser(sub, arguments=argv[:1] == ["bench"])  # the top-level parser has no flags but --help
    try:
        args = parser.parse_args(argv)
        if args.command == "bench":  # its own errors (parser.error) are one line too
            return cmd_bench(args)
    except SystemExit as stop:  # --help, or a parse error already printed in one line
        return stop.code if isinstance(stop.code, int) else 2
    command = f"cutmix {args.command}"
    try:
        commands = {"train": cmd_train, "eval": cmd_eval, "report": cmd_report, "show": cmd_show}
        return commands[args.command](args)
    except (UsageError, ValueError, FileNotFoundError, ImportError) as err:
        print(f"{command}: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except (RunFailure, OSError) as err:
        print(f"{command}: failed: {_one_line(err)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
