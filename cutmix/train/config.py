"""Training configuration: dataclasses, TOML presets and ``key=value`` overrides.

Precedence when resolving a run: dataclass defaults < ``--preset`` < command-line flags < ``--set key=value``.
The resolved configuration is written to the run directory as ``config.json`` and is what ``--resume`` reads.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

OPTIM_IMPLS = ("auto", "fused", "foreach", "loop")
RESIDENT_MODES = ("auto", "on", "off")
MIX_METHODS = ("none", "cutmix", "mixup", "cutout", "cutmix+mixup", "feature-cutmix", "manifold-mixup")


@dataclass
class DataConfig:
    dataset: str = "shapes"  # "shapes", "cifar10", "cifar100", or a path to an ImageFolder tree or a zip of one
    val: str | None = None  # validation set (same forms); None: the dataset's own validation/test split
    root: str = "data"  # where torchvision's CIFAR files live (or are downloaded to)
    cache_dir: str | None = None  # decoded-image cache for folders and zips (default ~/.cache/cutmix)
    download: bool = False
    augment: str = "auto"  # "auto" | "crop-flip" | "imagenet" | "none"
    image_size: int = 32  # shapes: generated size; ImageNet-style sets: crop size
    num_classes: int = 10  # shapes only
    train_samples: int | None = None  # shapes: how many to generate; other sets: use a seeded subset
    val_samples: int | None = None
    train_eval_samples: int | None = None  # also evaluate this many training images, unaugmented and unmixed
    num_workers: int = 0  # DataLoader workers for lazily decoded (ImageNet-style) sets
    skip_corrupt: bool = False
    resident: str = "auto"  # "auto" | "on" | "off": in-memory sets held and augmented on the training device
    pad_mode: str = "zeros"  # crop-flip padding: "zeros" | "reflect"


@dataclass
class ModelConfig:
    name: str = "resnet20"  # see `cutmix.models.available_models()`; "tv:NAME" and "timm:NAME" also work
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class MixConfig:
    method: str = "cutmix"  # one of MIX_METHODS
    alpha: float = 1.0  # Beta concentration of CutMix (or of Mixup when method="mixup")
    prob: float = 0.5  # chance to mix a batch (or a sample with per_sample)
    schedule: str = "constant"  # "constant" | "linear": prob ramps from 0 to `prob` over training
    per_sample: bool = False
    box: str = "uniform"  # "uniform" | "gaussian" | "fixed"
    placement: str = "clip"  # "clip" | "inside"
    label: str = "area"  # "area" | "onehot" | "complete"
    sigma: float = 0.25  # centre-Gaussian spread, fraction of the side
    size: float = 0.5  # fixed box side, fraction of the side
    cutout_size: int = 16  # Cutout square side in pixels
    mixup_alpha: float = 1.0  # Mixup's alpha in "cutmix+mixup" and "manifold-mixup"
    switch_prob: float = 0.5  # "cutmix+mixup": chance of Mixup instead of CutMix per batch
    layers: list[str] = field(default_factory=lambda: ["layer1"])  # feature-level methods ("" = the input)


@dataclass
class OptimConfig:
    lr: float = 0.1  # for batch_size 128; not rescaled automatically
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "cosine"  # "cosine" | "step" | "constant"
    milestones: list[float] = field(default_factory=lambda: [0.5, 0.75])  # step: fractions of training
    gamma: float = 0.1  # step: decay factor at each milestone
    warmup_epochs: float = 0.0  # linear warm-up from 0
    label_smoothing: float = 0.0
    impl: str = "auto"  # SGD kernels: "auto" (CUDA: fused, else foreach; CPU: loop) | "fused" | "foreach" | "loop"


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    mix: MixConfig = field(default_factory=MixConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    epochs: int = 8
    batch_size: int = 128  # per process
    eval_batch_size: int | None = None  # None: 128 on a CPU (cache-sized batches: ~2x faster than 500), 1000 on CUDA
    eval_every: int = 1  # evaluate every N epochs (and always after the last one)
    seed: int = 0
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:1" ...
    amp: str = "none"  # "none" | "bf16" | "fp16" (CUDA only)
    channels_last: bool | None = None  # None: auto (on for a CPU, where it is ~1.3x faster; on CUDA with amp)
    compile: bool = False
    out: str = "runs"
    name: str | None = None  # run directory name under `out`; default: dataset-model-mix-seed
    max_steps: int | None = None  # stop after this many optimizer steps (smoke tests)
    progress: bool = True
    threads: int | None = None  # torch intra-op threads on CPU (default: torch's choice)


SECTIONS = {"data": DataConfig, "model": ModelConfig, "mix": MixConfig, "optim": OptimConfig}


def to_dict(config: TrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


def from_dict(values: dict[str, Any]) -> TrainConfig:
    """Build a config from nested dicts (presets, saved runs), rejecting unknown keys by name."""
    config = TrainConfig()
    apply(config, values)
    return config


def apply(config: TrainConfig, values: dict[str, Any], origin: str = "config") -> TrainConfig:
    """Set nested ``values`` on ``config`` in place; unknown sections or keys raise ValueError naming them."""
    for key, value in values.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise ValueError(f"{origin}: [{key}] must be a table of settings, got {value!r}")
            section = getattr(config, key)
            for sub, sub_value in value.items():
                set_value(section, sub, sub_value, f"{origin}: {key}.{sub}")
        else:
            set_value(config, key, value, f"{origin}: {key}")
    return config


def set_value(target: object, key: str, value: Any, where: str) -> None:
    names = {f.name: f for f in dataclasses.fields(target)}  # type: ignore[arg-type]
    if key not in names:
        raise ValueError(f"{where} is not a setting; known: {', '.join(sorted(names))}")
    current = getattr(target, key)
    if isinstance(current, bool) and not isinstance(value, bool):
        raise ValueError(f"{where} must be true or false, got {value!r}")
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    setattr(target, key, value)


def parse_override(text: str) -> tuple[str, Any]:
    """``"optim.lr=0.05"`` -> ``("optim.lr", 0.05)``; values parse as TOML literals, else as plain strings."""
    if "=" not in text:
        raise ValueError(f"--set expects key=value (e.g. optim.lr=0.05), got {text!r}")
    key, raw = (part.strip() for part in text.split("=", 1))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def apply_override(config: TrainConfig, text: str) -> None:
    key, value = parse_override(text)
    parts = key.split(".")
    if len(parts) == 1:
        apply(config, {parts[0]: value}, "--set")
    elif len(parts) == 2:
        apply(config, {parts[0]: {parts[1]: value}}, "--set")
    elif len(parts) == 3 and parts[0] == "model" and parts[1] == "kwargs":
        config.model.kwargs[parts[2]] = value
    else:
        raise ValueError(f"--set {key}: expected 'key' or 'section.key' (e.g. optim.lr), got {key!r}")


def preset_names() -> list[str]:
    return sorted(p.name[: -len(".toml")] for p in resources.files("cutmix.train.presets").iterdir()
                  if p.name.endswith(".toml"))


def load_preset(name: str) -> dict[str, Any]:
    """A preset by name (see :func:`preset_names`) or a path to a TOML file."""
    path = Path(name)
    if path.suffix == ".toml" and path.exists():
        return tomllib.loads(path.read_text())
    resource = resources.files("cutmix.train.presets") / f"{name}.toml"
    if not resource.is_file():
        raise ValueError(f"unknown preset {name!r}; presets: {', '.join(preset_names())} (or a path to a .toml)")
    return tomllib.loads(resource.read_text())


def validate(config: TrainConfig) -> TrainConfig:
    """Reject impossible settings early, naming them (the library checks the mixing arguments again)."""
    if config.mix.method not in MIX_METHODS:
        raise ValueError(f"mix.method must be one of {', '.join(MIX_METHODS)}; got {config.mix.method!r}")
    if config.mix.schedule not in ("constant", "linear"):
        raise ValueError(f"mix.schedule must be 'constant' or 'linear', got {config.mix.schedule!r}")
    if config.optim.schedule not in ("cosine", "step", "constant"):
        raise ValueError(f"optim.schedule must be 'cosine', 'step' or 'constant', got {config.optim.schedule!r}")
    if config.data.augment not in ("auto", "crop-flip", "imagenet", "none"):
        raise ValueError(f"data.augment must be auto, crop-flip, imagenet or none; got {config.data.augment!r}")
    if config.data.resident not in RESIDENT_MODES:
        raise ValueError(f"data.resident must be one of {', '.join(RESIDENT_MODES)}; got {config.data.resident!r}")
    if config.data.pad_mode not in ("zeros", "reflect"):
        raise ValueError(f"data.pad_mode must be 'zeros' or 'reflect', got {config.data.pad_mode!r}")
    if config.optim.impl not in OPTIM_IMPLS:
        raise ValueError(f"optim.impl must be one of {', '.join(OPTIM_IMPLS)}; got {config.optim.impl!r}")
    if config.amp not in ("none", "bf16", "fp16"):
        raise ValueError(f"amp must be 'none', 'bf16' or 'fp16', got {config.amp!r}")
    for name in ("epochs", "batch_size", "eval_batch_size", "eval_every"):
        if name == "eval_batch_size" and config.eval_batch_size is None:
            continue
        if not isinstance(getattr(config, name), int) or getattr(config, name) < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {getattr(config, name)!r}")
    if config.data.train_eval_samples is not None and (
            not isinstance(config.data.train_eval_samples, int) or config.data.train_eval_samples < 1):
        raise ValueError(f"data.train_eval_samples must be an integer >= 1 or unset, got "
                         f"{config.data.train_eval_samples!r}")
    if config.max_steps is not None and config.max_steps < 1:
        raise ValueError(f"max_steps must be >= 1 or unset, got {config.max_steps}")
    if not 0.0 <= config.mix.prob <= 1.0:
        raise ValueError(f"mix.prob must be in [0, 1], got {config.mix.prob}")
    if config.optim.lr <= 0:
        raise ValueError(f"optim.lr must be > 0, got {config.optim.lr}")
    return config


def save(config: TrainConfig, path: Path) -> None:
    path.write_text(json.dumps(to_dict(config), indent=2) + "\n")


def load(path: Path) -> TrainConfig:
    return from_dict(json.loads(Path(path).read_text()))
