"""ImageFolder trees and zips: eager loading with its cache, corrupt files, layouts, and the lazy FolderDataset.

Every dataset here is built in tmp_path with Pillow; caches go to tmp_path too (CUTMIX_CACHE is redirected for
every test), so the suite never writes to ~/.cache.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from torch.utils.data import DataLoader

import cutmix.data.archive as archive
from cutmix.data import CorruptImageError, FolderDataset, ImageSet, MixedSizeError, load_images

H, W = 6, 8
CLASSES = ["cat", "dog", "emu"]  # written in another order below: loading must sort them


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUTMIX_CACHE", str(tmp_path / "default-cache"))


def _pixels(seed: int, h: int = H, w: int = W) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _encode(array: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    PIL.Image.fromarray(array).save(buf, format=fmt)
    return buf.getvalue()


def make_files(h: int = H, w: int = W) -> dict[str, bytes]:
    """Relative path -> file bytes: 3 classes, PNG and JPEG, plus files a loader must ignore."""
    files = {}
    for ci, cls in enumerate(reversed(CLASSES)):
        for j in range(3):
            fmt, ext = (("PNG", "png"), ("JPEG", "jpg"))[(ci + j) % 2]
            files[f"{cls}/{j:04d}.{ext}"] = _encode(_pixels(10 * ci + j, h, w), fmt)
    files["dog/notes.txt"] = b"not an image"
    files["dog/.hidden.png"] = b"hidden, ignored"
    files["README.md"] = b"top-level file, ignored"
    return files


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def write_zip(path: Path, files: dict[str, bytes], top: str = "", deflate: bool = False) -> Path:
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=method) as zf:
        for rel, data in files.items():
            zf.writestr(top + rel, data)
        zf.writestr("__MACOSX/._junk.png", b"resource fork, ignored")
    return path


def expected_pngs(files: dict[str, bytes]) -> dict[str, np.ndarray]:
    pngs = {k: v for k, v in files.items() if k.endswith(".png") and "/." not in k}
    return {k: np.array(PIL.Image.open(io.BytesIO(v))) for k, v in pngs.items()}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "pets", make_files())


@pytest.fixture
def zipped(tmp_path: Path) -> Path:
    return write_zip(tmp_path / "pets.zip", make_files(), top="train/")


def _same(a: ImageSet, b: ImageSet) -> None:
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels) and a.classes == b.classes


# -- eager loading


def test_tree_loads_sorted_classes_and_exact_pixels(tree: Path, tmp_path: Path) -> None:
    data = load_images(tree, cache_dir=tmp_path / "c")
    assert data.classes == CLASSES
    assert data.images.shape == (9, 3, H, W) and data.images.dtype == torch.uint8 and data.images.is_contiguous()
    assert data.labels.dtype == torch.int64 and data.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert data.boxes is None and data.skipped == 0 and data.name == "pets" and len(data) == 9
    files = sorted(k for k in make_files() if k.endswith((".png", ".jpg")) and "/." not in k)  # class, file name
    pngs = expected_pngs(make_files())
    assert len(pngs) == 5
    for i, rel in enumerate(files):
        if rel in pngs:
            assert torch.equal(data.images[i], torch.from_numpy(pngs[rel]).permute(2, 0, 1))


@pytest.mark.parametrize(("top", "deflate"), [("train/", False), ("", False), ("train/", True)])
def test_zip_loads_the_same_as_the_tree(tree: Path, tmp_path: Path, top: str, deflate: bool) -> None:
    zipped = write_zip(tmp_path / "pets.zip", make_files(), top=top, deflate=deflate)
    from_zip = load_images(zipped, cache_dir=tmp_path / "c")
    _same(from_zip, load_images(tree, cache_dir=tmp_path / "c"))
    assert from_zip.name == "pets"


def test_modes_are_converted_to_rgb(tmp_path: Path) -> None:
    gray = PIL.Image.fromarray(np.full((H, W), 77, dtype=np.uint8))
    rgba = PIL.Image.fromarray(np.full((H, W, 4), 200, dtype=np.uint8))
    files = {"a/gray.png": b"", "b/rgba.png": b"", "c/pal.png": b""}
    for rel, im in zip(files, (gray, rgba, gray.convert("P")), strict=True):
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        files[rel] = buf.getvalue()
    data = load_images(write_tree(tmp_path / "modes", files), cache_dir=tmp_path / "c")
    assert data.images.shape == (3, 3, H, W)
    assert (data.images[0] == 77).all() and (data.images[1] == 200).all() and (data.images[2] == 77).all()


# -- cache


def test_cache_is_written_once_and_reused(zipped: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache_dir = tmp_path / "c"
    first = load_images(zipped, cache_dir=cache_dir)
    entries = list(cache_dir.iterdir())
    assert len(entries) == 1 and entries[0].name.startswith("pets-") and entries[0].suffix == ".pt"
    stamp = entries[0].stat().st_mtime_ns

    def no_decoding(*args: object) -> None:
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setattr(archive, "decode", no_decoding)
    second = load_images(zipped, cache_dir=cache_dir)
    _same(first, second)
    assert list(cache_dir.iterdir()) == entries and entries[0].stat().st_mtime_ns == stamp


def test_cache_dir_defaults_to_the_environment(tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUTMIX_CACHE", str(tmp_path / "env-cache"))
    load_images(tree)
    assert len(list((tmp_path / "env-cache").glob("pets-*.pt"))) == 1


def test_changed_source_is_decoded_again(tree: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "c"
    load_images(tree, cache_dir=cache_dir)
    (tree / "emu" / "0009.png").write_bytes(_encode(_pixels(99), "PNG"))
    data = load_images(tree, cache_dir=cache_dir)
    assert len(data) == 10 and len(list(cache_dir.iterdir())) == 2


def test_damaged_cache_entry_is_rebuilt(zipped: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "c"
    good = load_images(zipped, cache_dir=cache_dir)
    (entry,) = cache_dir.iterdir()
    entry.write_bytes(entry.read_bytes()[:100])
    _same(load_images(zipped, cache_dir=cache_dir), good)
    assert torch.load(entry, weights_only=True)["images"].shape == good.images.shape


def test_failed_write_leaves_no_files(zipped: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    data = load_images(zipped, cache_dir=tmp_path / "c")  # still loads: the cache is an optimisation
    assert len(data) == 9
    assert list((tmp_path / "c").iterdir()) == []


# -- errors


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nowhere\.zip"):
        load_images(tmp_path / "nowhere.zip")


@pytest.mark.parametrize("as_zip", [False, True])
def test_corrupt_image_is_named(tmp_path: Path, as_zip: bool) -> None:
    files = make_files()
    files["dog/0007.jpg"] = files["dog/0001.png"][:40]  # truncated
    path = write_zip(tmp_path / "bad.zip", files, top="train/") if as_zip else write_tree(tmp_path / "bad", files)
    with pytest.raises(CorruptImageError) as info:
        load_images(path, cache_dir=tmp_path / "c")
    message = str(info.value)
    assert "0007.jpg" in message
    if as_zip:
        assert f"{path}:train/dog/0007.jpg" in message
    else:
        assert str(path / "dog" / "0007.jpg") in message
    assert isinstance(info.value, ValueError)
    assert not (tmp_path / "c").exists() or not list((tmp_path / "c").iterdir())  # nothing cached


def test_truncated_jpeg_is_corrupt(tmp_path: Path) -> None:
    files = make_files()
    files["cat/0000.jpg"] = _encode(_pixels(5, 64, 64), "JPEG")[:-200]  # header fine, scan data cut short
    files = {k: v for k, v in files.items() if not k.startswith("cat/") or k == "cat/0000.jpg"}
    with pytest.raises(CorruptImageError, match=r"0000\.jpg"):
        load_images(write_tree(tmp_path / "t", files), cache_dir=tmp_path / "c")


def test_skip_corrupt_counts_and_warns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = make_files()
    files["dog/0007.jpg"] = b"garbage"
    path = write_zip(tmp_path / "bad.zip", files)
    data = load_images(path, cache_dir=tmp_path / "c", skip_corrupt=True)
    assert len(data) == 9 and data.skipped == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "skipped 1 corrupt" in err[0] and "dog/0007.jpg" in err[0]
    # the cached entry remembers what was skipped: same result again, and a strict load still refuses it
    again = load_images(path, cache_dir=tmp_path / "c", skip_corrupt=True)
    assert again.skipped == 1 and torch.equal(again.images, data.images)
    with pytest.raises(CorruptImageError, match=r"0007\.jpg"):
        load_images(path, cache_dir=tmp_path / "c")


def test_empty_tree(tmp_path: Path) -> None:
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    (tmp_path / "empty" / "cat" / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match="no images"):
        load_images(tmp_path / "empty", cache_dir=tmp_path / "c")


def test_wrong_layout(tmp_path: Path) -> None:
    files = make_files()
    files["stray.png"] = files["cat/0000.png"]
    with pytest.raises(ValueError, match=r"stray\.png"):
        load_images(write_tree(tmp_path / "t", files), cache_dir=tmp_path / "c")


def test_not_a_zip(tmp_path: Path) -> None:
    (tmp_path / "x.zip").write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match="zip"):
        load_images(tmp_path / "x.zip", cache_dir=tmp_path / "c")


def test_mixed_sizes_name_two_files(tmp_path: Path) -> None:
    files = make_files()
    files["emu/0001.png"] = _encode(_pixels(1, 9, 5), "PNG")
    with pytest.raises(MixedSizeError) as info:
        load_images(write_zip(tmp_path / "mixed.zip", files), cache_dir=tmp_path / "c")
    message = str(info.value)
    assert "cat/0000" in message and "emu/0001.png" in message and "FolderDataset" in message
    assert isinstance(info.value, ValueError)


# -- lazy dataset


def test_folder_dataset_matches_load_images(zipped: Path, tree: Path, tmp_path: Path) -> None:
    eager = load_images(zipped, cache_dir=tmp_path / "c")
    for path in (zipped, tree):
        ds = FolderDataset(path)
        assert len(ds) == 9 and ds.classes == CLASSES and ds.targets == eager.labels.tolist()
        for i in range(len(ds)):
            image, label = ds[i]
            assert image.dtype == torch.uint8 and image.shape == (3, H, W)
            assert torch.equal(image, eager.images[i]) and label == int(eager.labels[i]) and isinstance(label, int)


def test_folder_dataset_transform_and_varied_sizes(tmp_path: Path) -> None:
    files = make_files()
    files["emu/0001.png"] = _encode(_pixels(1, 9, 5), "PNG")
    ds = FolderDataset(write_zip(tmp_path / "mixed.zip", files), transform=lambda x: x.float().mean())
    sizes = {tuple(FolderDataset(tmp_path / "mixed.zip")[i][0].shape) for i in range(len(ds))}
    assert sizes == {(3, H, W), (3, 9, 5)}
    value, label = ds[0]
    assert isinstance(value, torch.Tensor) and value.ndim == 0 and label == 0


def test_folder_dataset_pickles_after_use(zipped: Path) -> None:
    ds = FolderDataset(zipped)
    first = ds[0][0]  # opens the zip in this process
    clone = pickle.loads(pickle.dumps(ds))
    assert torch.equal(clone[0][0], first) and clone.classes == ds.classes


def test_folder_dataset_with_worker_processes(zipped: Path) -> None:
    ds = FolderDataset(zipped)
    ds[0]  # an open handle in the parent must not leak into the workers
    loader = DataLoader(ds, batch_size=4, num_workers=2, shuffle=False)
    images, labels = zip(*loader, strict=True)
    assert torch.equal(torch.cat(labels), torch.tensor(ds.targets))
    assert torch.equal(torch.cat(images), torch.stack([ds[i][0] for i in range(len(ds))]))


def test_folder_dataset_corrupt_item(tmp_path: Path) -> None:
    files = make_files()
    files["dog/0001.png"] = b"\x89PNG broken"
    ds = FolderDataset(write_zip(tmp_path / "bad.zip", files))
    ds[0]
    with pytest.raises(CorruptImageError, match=r"bad\.zip:dog/0001\.png"):
        ds[4]


def test_folder_dataset_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="absent"):
        FolderDataset(tmp_path / "absent")


def test_zip_is_read_in_place(zipped: Path, tmp_path: Path) -> None:
    before = set(os.listdir(tmp_path))
    load_images(zipped, cache_dir=tmp_path / "c")
    FolderDataset(zipped)[0]
    assert set(os.listdir(tmp_path)) - before == {"c"}  # only the cache entry, no extracted files
