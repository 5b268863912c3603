"""The import direction of the package, read from the source with ``ast`` (function-level imports included, so a
lazy import cannot hide a cycle): core <- data, models <- run <- train, evaluate <- bench <- cli; viz draws what it
is given and imports neither train nor evaluate; evaluate and train do not import each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "cutmix"
TOP = ("cli", "__main__")  # the command line may import anything

# Which rooms each room may import from (core: the top-level modules such as boxes, functional, runtime).
ALLOWED = {
    "core": {"core"},
    "data": {"core", "data"},
    "models": {"core", "models"},
    "viz": {"core", "viz"},
    "integrations": {"core", "integrations", "viz"},
    "run": {"core", "data", "models", "run"},
    "train": {"core", "data", "models", "run", "viz", "integrations", "train"},  # TensorBoard logging
    "evaluate": {"core", "data", "models", "run", "viz", "evaluate"},
    "bench": {"core", "data", "models", "run", "train", "bench"},
}
PACKAGES = {name for name in ALLOWED if name != "core"}


def room_of(module: str) -> str:
    """``cutmix.train.engine`` -> ``train``; ``cutmix.boxes`` and ``cutmix`` -> ``core``."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] not in PACKAGES | set(TOP):
        return "core"
    return parts[1]


def module_name(path: Path, root: Path = ROOT) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """Every ``cutmix`` module ``path`` imports, anywhere in the file, with its line (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = module_name(path, root)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name))
            if name == "cutmix":  # from cutmix import data, train, ...
                found += [(node.lineno, f"cutmix.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if name == "cutmix" or name.startswith("cutmix.")]


def violations(root: Path = ROOT) -> list[str]:
    out = []
    for path in sorted(root.rglob("*.py")):
        room = room_of(module_name(path, root))
        if room in TOP:
            continue
        for line, name in imported(path, root):
            target = room_of(name)
            if target not in ALLOWED[room]:
                out.append(f"{path.relative_to(root.parent)}:{line} ({room}) imports {name} ({target})")
    return out


def test_imports_run_downward_only():
    assert violations() == []


def test_viz_and_evaluate_import_neither_train_nor_each_other_upward():
    assert not ALLOWED["viz"] & {"train", "evaluate", "run"}
    assert "train" not in ALLOWED["evaluate"] and "evaluate" not in ALLOWED["train"]


@pytest.mark.parametrize("source, expected", [
    ("from cutmix.train.config import TrainConfig\n", "imports cutmix.train.config (train)"),
    ("def f():\n    from cutmix.evaluate import calibration\n", "imports cutmix.evaluate (evaluate)"),
    ("from cutmix import train\n", "imports cutmix.train (train)"),
    ("from ..train import engine\n", "imports cutmix.train (train)"),
])
def test_the_checker_catches_upward_imports_even_inside_functions(tmp_path, source, expected):
    pkg = tmp_path / "cutmix"
    (pkg / "viz").mkdir(parents=True)
    (pkg / "viz" / "bad.py").write_text(source)
    found = violations(pkg)
    assert len(found) == 1 and found[0].endswith(expected), found


def test_every_room_is_a_regular_package():
    """A folder without ``__init__.py`` imports from a checkout but is left out of a built wheel."""
    folders = {p.parent for p in ROOT.rglob("*.py")} - {ROOT}
    assert sorted(str(f.relative_to(ROOT)) for f in folders if not (f / "__init__.py").is_file()) == []
