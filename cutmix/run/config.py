"""Training configuration: the settings (each declared once, with its help, choices, range and flag), TOML presets
and ``key=value`` overrides.

Precedence when resolving a run: dataclass defaults < ``--preset`` < command-line flags < ``--set key=value``.
The resolved configuration is written to the run directory as ``config.json`` and is what ``--resume`` reads; a
key missing from an older ``config.json`` takes its default. The flags, ``--help`` and the checks all come from
the declarations below (see :mod:`cutmix.run.settings`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from cutmix._choices import BOX_KINDS, CIFAR_NAMES, LABEL_MODES, PADDING_MODES, PLACEMENTS, ROUNDINGS
from cutmix.run.settings import (
    Setting,
    SettingError,
    about,
    check,
    coerce,
    literal,
    parse,
    setting,
    settings_of,
    walk,
)
from cutmix.runtime import DEFAULT_TIMEOUT_S, write_atomic

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

OPTIM_IMPLS = ("auto", "fused", "foreach", "loop")
RESIDENT_MODES = ("auto", "on", "off")
MIX_METHODS = ("none", "cutmix", "mixup", "cutout", "cutmix+mixup", "feature-cutmix", "manifold-mixup")
MIX_SCHEDULES = ("constant", "linear")
LR_SCHEDULES = ("cosine", "step", "constant")
AUGMENTS = ("auto", "crop-flip", "imagenet", "none")
AMP_MODES = ("none", "bf16", "fp16")
TASKS = ("classify", "segment")


@dataclass
class DataConfig:
    dataset: str = setting("shapes", flag="--data", metavar="DATA",
                           help="shapes, cifar10, cifar100, or an ImageFolder directory / zip of one")
    val: str | None = setting(None, flag="--val-data", metavar="DATA", shown="the dataset's own test split",
                              help="validation set (same forms)")
    root: str = setting("data", flag="--data-root", metavar="DIR", help="directory of torchvision's CIFAR files")
    cache_dir: str | None = setting(None, metavar="DIR", shown="$CUTMIX_CACHE or ~/.cache/cutmix",
                                    help="decoded-image cache for folders and zips")
    download: bool = setting(False, flag="--download", help="download CIFAR if absent")
    augment: str = setting("auto", flag="--augment", choices=AUGMENTS,
                           help="auto: crop-flip for same-size sets, imagenet for per-image ones")
    image_size: int = setting(32, flag="--image-size", at_least=1,
                              help="shapes: generated size; ImageNet-style sets: crop size")
    num_classes: int = setting(10, at_least=2, help="shapes only: how many classes to generate")
    train_samples: int | None = setting(None, flag="--train-samples", at_least=1, metavar="N", shown="all",
                                        help="use (or generate) only N training images, a seeded subset keeping "
                                        "each class's share")
    val_samples: int | None = setting(None, flag="--val-samples", at_least=1, metavar="N", shown="all",
                                      help="use only N validation images (a seeded, stratified subset)")
    train_eval_samples: int | None = setting(None, flag="--train-eval-samples", at_least=1, metavar="N",
                                             shown="none", help="also evaluate N training images, unaugmented and "
                                             "unmixed, at each evaluation (the train/validation gap)")
    num_workers: int = setting(0, flag="--workers", at_least=0, metavar="N",
                               help="DataLoader workers for per-image decoding (ImageNet-style sets)")
    skip_corrupt: bool = setting(False, flag="--skip-corrupt",
                                 help="skip unreadable images (counted, named once) instead of stopping")
    resident: str = setting("auto", flag="--resident", choices=RESIDENT_MODES,
                            help="hold in-memory sets on the training device and augment there (auto: on CUDA "
                            "when the set fits in a quarter of the free memory)")
    pad_mode: str = setting("zeros", flag="--pad-mode", choices=PADDING_MODES, help="padding of the random crop")


@dataclass
class ModelConfig:
    name: str = setting("resnet20", flag="--model", metavar="MODEL",
                        help="resnet20, preact_resnet18, pyramidnet200, ... (cutmix.models.available_models()), "
                        "tv:NAME (torchvision) or timm:NAME")
    kwargs: dict[str, Any] = field(default_factory=dict, metadata=about(
        shown="none", help="keyword arguments of the model, e.g. --set model.kwargs.alpha=48"))


@dataclass
class MixConfig:
    method: str = setting("cutmix", flag="--mix", choices=MIX_METHODS, help="the regulariser")
    alpha: float = setting(1.0, flag="--alpha", above=0,
                           help="Beta(alpha, alpha) of CutMix (or of Mixup with --mix mixup)")
    prob: float = setting(0.5, flag="--prob", at_least=0, at_most=1,
                          help="chance to mix a batch (a sample with --per-sample)")
    schedule: str = setting("constant", flag="--schedule", choices=MIX_SCHEDULES,
                            help="linear: prob grows from 0 over training (Scheduled CutMix)")
    per_sample: bool = setting(False, flag="--per-sample", help="a box and lambda per sample instead of per batch")
    box: str = setting("uniform", flag="--box", choices=BOX_KINDS, help="box sampler")
    placement: str = setting("clip", flag="--placement", choices=PLACEMENTS,
                             help="clip: the paper's box clipped at the border; inside: kept whole in the image")
    rounding: str = setting("exact", flag="--rounding", choices=ROUNDINGS,
                            help="box side arithmetic: exact (rounded side) or reference (the released code's "
                            "int(), odd sides lose a pixel)")
    label: str = setting("area", flag="--label", choices=LABEL_MODES, help="how the mixed targets are weighted")
    sigma: float = setting(0.25, above=0, help="centre-Gaussian box spread, a fraction of the side")
    size: float = setting(0.5, above=0, at_most=1, help="fixed box side, a fraction of the side")
    cutout_size: int = setting(16, flag="--cutout-size", at_least=1, metavar="PX", help="Cutout square side")
    mixup_alpha: float = setting(1.0, flag="--mixup-alpha", above=0,
                                 help="Mixup's alpha in cutmix+mixup and manifold-mixup")
    switch_prob: float = setting(0.5, flag="--switch-prob", at_least=0, at_most=1,
                                 help="cutmix+mixup: chance of Mixup instead of CutMix per batch")
    layers: list[str] = field(default_factory=lambda: ["layer1"], metadata=about(
        flag="--layers", metavar="L1,L2", help="feature-level mixing layers, comma-separated ('' = the input images)"))


@dataclass
class OptimConfig:
    lr: float = setting(0.1, flag="--lr", above=0, help="SGD learning rate, for the batch size given (not rescaled)")
    momentum: float = setting(0.9, at_least=0, below=1, help="SGD momentum")
    nesterov: bool = setting(True, help="Nesterov momentum")
    weight_decay: float = setting(5e-4, flag="--weight-decay", at_least=0, help="L2 weight decay")
    schedule: str = setting("cosine", flag="--lr-schedule", choices=LR_SCHEDULES, help="learning-rate schedule")
    milestones: list[float] = field(default_factory=lambda: [0.5, 0.75], metadata=about(
        metavar="F1,F2", help="step schedule: milestones as fractions of training"))
    gamma: float = setting(0.1, above=0, help="step schedule: decay factor at each milestone")
    warmup_epochs: float = setting(0.0, flag="--warmup-epochs", at_least=0, help="linear warm-up from 0")
    label_smoothing: float = setting(0.0, flag="--label-smoothing", at_least=0, below=1, help="label smoothing")
    impl: str = setting("auto", flag="--optim-impl", choices=OPTIM_IMPLS,
                        help="SGD kernels (auto: fused on CUDA, else foreach; the plain loop on a CPU)")


@dataclass
class TrainConfig:
    task: str = setting("classify", flag="--task", choices=TASKS,
                        help="classify: one label per image; segment: per-pixel classes of the builtin shapes masks "
                        "(mIoU per epoch)")
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    mix: MixConfig = field(default_factory=MixConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    epochs: int = setting(8, flag="--epochs", at_least=1, resume=True,
                          help="epochs to train (on --resume: extend or shorten the run)")
    batch_size: int = setting(128, flag="--batch-size", at_least=1, help="batch per process")
    eval_batch_size: int | None = setting(None, flag="--eval-batch-size", at_least=1,
                                          shown="auto: 128 on a CPU, 1000 on CUDA", help="evaluation batch")
    eval_every: int = setting(1, flag="--eval-every", at_least=1, metavar="N", resume=True,
                              help="evaluate every N epochs and after the last")
    seed: int = setting(0, flag="--seed", help="seed of every random stream (data order, augmentation, mixing)")
    device: str = setting("auto", flag="--device", metavar="DEVICE",
                          help="auto, cpu, cuda, cuda:1 ... (auto: cuda if available)")
    amp: str = setting("none", flag="--amp", choices=AMP_MODES,
                       help="autocast: bf16 or fp16 on CUDA, bf16 on a CPU (fast on CPUs with bf16 instructions)")
    channels_last: bool | None = setting(None, flag="--channels-last", shown="auto: on for a CPU, on CUDA with --amp",
                                         help="NHWC memory format")
    compile: bool = setting(False, flag="--compile", help="torch.compile the model (eager if it fails)")
    out: str = setting("runs", flag="--out", metavar="DIR", help="parent directory of run directories")
    name: str | None = setting(None, flag="--name", metavar="NAME", shown="DATASET-MODEL-MIX[-ablations]-sSEED",
                               help="run directory name under --out")
    max_steps: int | None = setting(None, flag="--max-steps", at_least=1, metavar="N", shown="none",
                                    help="stop after N optimizer steps (smoke tests)")
    progress: bool = setting(True, flag="--progress", resume=True, help="progress bars")
    threads: int | None = setting(None, flag="--threads", at_least=1, metavar="N", resume=True,
                                  shown="torch's choice", help="torch intra-op threads on a CPU")
    tensorboard: bool = setting(False, flag="--tensorboard", resume=True,
                                help="also write TensorBoard events into the run directory (metrics.jsonl stays the "
                                "record); needs the tensorboard package")
    save_every: int | None = setting(None, flag="--save-every", at_least=1, metavar="N", resume=True,
                                     shown="epoch ends only",
                                     help="also save last.pt every N optimizer steps inside an epoch")
    ddp_timeout: float = setting(DEFAULT_TIMEOUT_S, flag="--ddp-timeout", above=0, metavar="S", resume=True,
                                 help="DDP: seconds a collective may wait for the other ranks before the run stops")


SECTIONS = {"data": DataConfig, "model": ModelConfig, "mix": MixConfig, "optim": OptimConfig}


@cache
def all_settings() -> dict[str, Setting]:
    """Every declared setting by path (``"optim.lr"``, ``"epochs"``), in declaration order."""
    return {s.path: s for s in settings_of(TrainConfig)}


def find(path: str, where: str | None = None) -> Setting:
    """The setting at ``path``; an unknown one is a SettingError naming the known keys of its section."""
    found = all_settings().get(path)
    if found is not None:
        return found
    section, _, _ = path.rpartition(".")
    known = sorted(p.rpartition(".")[2] for p in all_settings() if p.rpartition(".")[0] == section)
    if section and section not in SECTIONS:
        known = sorted(SECTIONS) + [p for p in all_settings() if "." not in p]
    raise SettingError(f"{where or path} is not a setting; known: {', '.join(known)}")


def get(config: TrainConfig, path: str) -> Any:
    target: Any = config
    for part in path.split("."):
        target = getattr(target, part)
    return target


def put(config: TrainConfig, path: str, value: Any, where: str | None = None) -> None:
    """Set ``path`` on ``config`` with the setting's type check (``model.kwargs.NAME`` sets one keyword)."""
    parts = path.split(".")
    if len(parts) == 3 and parts[:2] == ["model", "kwargs"]:
        config.model.kwargs[parts[2]] = value
        return
    s = find(path, where)
    value = coerce(s, value, where or path)
    target = config if s.section is None else getattr(config, s.section)
    setattr(target, s.name, value)


def to_dict(config: TrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


def from_dict(values: dict[str, Any]) -> TrainConfig:
    """Build a config from nested dicts (presets, saved runs): unknown keys are errors, missing ones defaults."""
    config = TrainConfig()
    apply(config, values)
    return config


def apply(config: TrainConfig, values: dict[str, Any], origin: str = "config") -> TrainConfig:
    """Set nested ``values`` on ``config`` in place; unknown or mistyped keys raise SettingError naming them."""
    for key, value in values.items():
        if key in SECTIONS and not isinstance(value, dict):
            raise SettingError(f"{origin}: [{key}] must be a table of settings, got {value!r}")
    for path, value in walk(values):
        if path == "model.kwargs" and isinstance(value, dict):
            config.model.kwargs = dict(value)
            continue
        put(config, path, value, f"{origin}: {path}")
    return config


def set_value(target: object, key: str, value: Any, where: str) -> None:
    """Set one field of a section (or of the whole config) with its type check."""
    section = next((name for name, cls in SECTIONS.items() if isinstance(target, cls)), None)
    s = find(f"{section}.{key}" if section else key, where)
    setattr(target, s.name, coerce(s, value, where))


def parse_override(text: str) -> tuple[str, Any]:
    """``"optim.lr=0.05"`` -> ``("optim.lr", 0.05)``, parsed by the setting's declared type.

    ``model.kwargs.NAME=VALUE`` has no declared type: VALUE is read as a TOML literal (48, 0.5, true, "text").
    """
    if "=" not in text:
        raise SettingError(f"--set expects key=value (e.g. optim.lr=0.05), got {text!r}")
    key, raw = (part.strip() for part in text.split("=", 1))
    parts = key.split(".")
    if len(parts) == 3 and parts[:2] == ["model", "kwargs"] and parts[2].isidentifier():
        return key, literal(raw)
    if len(parts) > 2:
        raise SettingError(f"--set {key}: expected 'key', 'section.key' (e.g. optim.lr) or model.kwargs.NAME")
    s = find(key, f"--set {key}")
    return key, parse(s, raw, f"--set {key}")


def apply_override(config: TrainConfig, text: str) -> None:
    key, value = parse_override(text)
    put(config, key, value, f"--set {key}")


@cache
def _presets() -> dict[str, str]:
    return {p.name[: -len(".toml")]: p.read_text() for p in resources.files("cutmix.run.presets").iterdir()
            if p.name.endswith(".toml")}


def preset_names() -> list[str]:
    return sorted(_presets())


def preset_description(name: str) -> str:
    """A preset's first comment line, which by convention says what it is in one line."""
    first = _presets()[name].splitlines()[0] if _presets()[name] else ""
    return first.lstrip("#").strip() if first.startswith("#") else ""


def load_preset(name: str) -> dict[str, Any]:
    """A preset by name (see :func:`preset_names`) or a path to a TOML file."""
    path = Path(name)
    if path.suffix == ".toml" and path.exists():
        text = path.read_text()
    elif name in _presets():
        text = _presets()[name]
    else:
        raise SettingError(f"unknown preset {name!r}; presets: {', '.join(preset_names())} (or a path to a .toml)")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SettingError(f"preset {name}: not valid TOML ({err})") from None


def validate(config: TrainConfig) -> TrainConfig:
    """Check every setting's type, choices and range, naming the first one that is wrong."""
    for s in all_settings().values():
        value = coerce(s, get(config, s.path))
        check(s, value)
    return config


def _resolved(spec: str) -> str:
    path = Path(spec).expanduser()
    return str(path.resolve()) if not path.is_absolute() else str(path)


def is_path(spec: str) -> bool:
    """Whether a dataset spec names a file or folder (not a builtin name)."""
    return spec not in ("shapes", *CIFAR_NAMES, "imagenet") and (
        spec.endswith(".zip") or "/" in spec or Path(spec).exists())


def resolve_paths(config: TrainConfig) -> TrainConfig:
    """A copy with relative data paths made absolute, so the stored config works from any directory."""
    config = dataclasses.replace(config, data=dataclasses.replace(config.data))
    d = config.data
    d.dataset = _resolved(d.dataset) if is_path(d.dataset) else d.dataset
    d.val = _resolved(d.val) if d.val is not None and is_path(d.val) else d.val
    if {d.dataset, d.val} & set(CIFAR_NAMES):
        d.root = _resolved(d.root)
    d.cache_dir = _resolved(d.cache_dir) if d.cache_dir is not None else None
    return config


def save(config: TrainConfig, path: Path) -> None:
    write_atomic(path, json.dumps(to_dict(config), indent=2) + "\n")


def load(path: Path) -> TrainConfig:
    path = Path(path)
    try:
        values = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise SettingError(f"{path} is not valid JSON ({err})") from None
    if not isinstance(values, dict):
        raise SettingError(f"{path} does not hold a configuration (a JSON object)")
    return apply(TrainConfig(), values, str(path))


def differences(a: TrainConfig, b: TrainConfig) -> dict[str, tuple[Any, Any]]:
    """``{path: (a's value, b's value)}`` for every setting (and ``model.kwargs``) that differs."""
    out = {}
    for path in all_settings():
        va, vb = get(a, path), get(b, path)
        if va != vb:
            out[path] = (va, vb)
    return out
