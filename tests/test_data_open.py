"""open_dataset's dispatch, load_cifar (on fake torchvision files), and the real CIFAR-10 JPEG zip when present."""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from test_data_archive import make_files, write_tree, write_zip

from cutmix.data import MEAN_STD, FolderDataset, ImageSet, load_cifar, load_images, open_dataset

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUTMIX_CACHE", str(tmp_path / "default-cache"))


# -- open_dataset


def test_open_shapes() -> None:
    data = open_dataset("shapes", "train", num_samples=50, seed=2, size=40, num_classes=4)
    assert isinstance(data, ImageSet) and data.images.shape == (50, 3, 40, 40) and len(data.classes) == 4
    assert data.boxes is not None


def test_open_paths(tmp_path: Path) -> None:
    files = make_files()
    tree = write_tree(tmp_path / "pets", files)
    zipped = write_zip(tmp_path / "pets.zip", files, top="val/")
    a = open_dataset(str(tree), "train", cache_dir=tmp_path / "c")
    b = open_dataset(str(zipped), "val", cache_dir=tmp_path / "c")
    assert isinstance(a, ImageSet) and isinstance(b, ImageSet)
    assert torch.equal(a.images, b.images) and a.classes == b.classes


def test_open_falls_back_to_lazy_for_mixed_sizes(tmp_path: Path) -> None:
    files = make_files()
    files["emu/0001.jpg"] = make_files(h=10, w=3)["emu/0001.jpg"]
    data = open_dataset(str(write_zip(tmp_path / "mixed.zip", files)), "train", cache_dir=tmp_path / "c")
    assert isinstance(data, FolderDataset) and len(data) == 9
    assert not (tmp_path / "c").exists() or not list((tmp_path / "c").iterdir())


def test_open_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        open_dataset("mnist", "train")
    with pytest.raises(FileNotFoundError, match=r"nothing\.zip"):
        open_dataset(str(tmp_path / "nothing.zip"), "train")
    (tmp_path / "data.tar").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"not a \.zip"):
        open_dataset(str(tmp_path / "data.tar"), "train")
    with pytest.raises(FileNotFoundError, match="--download"):
        open_dataset("cifar100", "train", root=str(tmp_path / "no-cifar"))


# -- CIFAR through torchvision


def _fake_cifar10(root: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, np.ndarray]:
    """torchvision's CIFAR-10 python files with a few random images; checksums are bypassed."""
    import torchvision.datasets.cifar as tv_cifar

    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (4, 3 * 32 * 32), dtype=np.uint8)
        arrays[name] = data
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": [int(x) for x in rng.integers(0, 10, 4)]}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": CIFAR10_CLASSES}, f)
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *args, **kwargs: True)
    monkeypatch.setattr(tv_cifar.CIFAR10, "_check_integrity", lambda self: True)
    return arrays


def test_load_cifar_from_torchvision_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arrays = _fake_cifar10(tmp_path, monkeypatch)
    train = load_cifar(str(tmp_path), "cifar10", "train")
    assert train.images.shape == (20, 3, 32, 32) and train.images.dtype == torch.uint8
    assert train.images.is_contiguous() and train.labels.dtype == torch.int64 and train.classes == CIFAR10_CLASSES
    expected = np.concatenate([arrays[f"data_batch_{i}"] for i in range(1, 6)]).reshape(-1, 3, 32, 32)
    assert torch.equal(train.images, torch.from_numpy(expected))
    test = open_dataset("cifar10", "test", root=str(tmp_path))
    assert torch.equal(test.images, torch.from_numpy(arrays["test_batch"].reshape(-1, 3, 32, 32)))
    assert torch.equal(load_cifar(tmp_path, split="val").images, test.images)  # "val" is the test set
    assert train.name == "cifar10" and train.boxes is None


def test_load_cifar_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        load_cifar(str(tmp_path / "empty"), "cifar10", "train")
    assert str(tmp_path / "empty") in str(info.value) and "--download" in str(info.value)
    with pytest.raises(ValueError, match="name"):
        load_cifar(str(tmp_path), "cifar1000")
    with pytest.raises(ValueError, match="split"):
        load_cifar(str(tmp_path), "cifar10", "dev")


# -- the real CIFAR-10 JPEG zip (../shared/data relative to the repository)


def _shared_cifar_zip(name: str) -> Path | None:
    candidates = []
    env = os.environ.get("CUTMIX_SHARED_DATA")
    if env:
        base = Path(env).expanduser()
        candidates += [base / name, base / "cifar10-jpeg" / name, base / "data" / "cifar10-jpeg" / name]
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg" / name)
    return next((p for p in candidates if p.is_file()), None)


@pytest.mark.real_data
def test_real_cifar10_test_zip(tmp_path: Path) -> None:
    path = _shared_cifar_zip("cifar10-test.zip")
    if path is None:
        pytest.skip("cifar10-test.zip not found under ../shared/data/cifar10-jpeg (or $CUTMIX_SHARED_DATA)")
    start = time.perf_counter()
    data = load_images(path, cache_dir=tmp_path / "c")
    cold = time.perf_counter() - start
    assert data.images.shape == (10000, 3, 32, 32) and data.images.dtype == torch.uint8
    assert data.classes == CIFAR10_CLASSES and data.skipped == 0 and data.name == "cifar10-test"
    assert torch.bincount(data.labels).tolist() == [1000] * 10
    mean = data.images.double().mean((0, 2, 3)) / 255
    assert torch.allclose(mean, torch.tensor(MEAN_STD["cifar10"][0], dtype=torch.float64), atol=0.01)
    start = time.perf_counter()
    again = load_images(path, cache_dir=tmp_path / "c")
    warm = time.perf_counter() - start
    assert torch.equal(again.images, data.images) and torch.equal(again.labels, data.labels)
    assert warm < cold
