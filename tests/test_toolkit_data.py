"""Per-image (ImageNet-style) sets: --skip-corrupt skips and counts, --train/--val-samples subset, bad files named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("torchvision")
from PIL import Image

from cutmix import cli
from cutmix.data import CorruptImageError, FolderDataset, Skipped, collate_skipping, load_images, open_dataset
from cutmix.run import config as cfg
from cutmix.train.data import build_data
from cutmix.train.distributed import Context


def varied_tree(root: Path, per_class: int = 8, bad: bool = True) -> Path:
    """Three classes of images of varied sizes (so the set is decoded per image), one corrupt and one empty file."""
    g = torch.Generator().manual_seed(0)
    for c, name in enumerate(("ant", "bee", "cat")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            size = 20 + 3 * i + c
            pixels = (torch.rand(size, size + 2, 3, generator=g) * 255).to(torch.uint8).numpy()
            Image.fromarray(pixels).save(root / name / f"{i:02d}.png")
    if bad:
        (root / "bee" / "03.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
        (root / "cat" / "05.png").write_bytes(b"")
    return root


def run_args(tree: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--data", str(tree), "--val-data", str(tree), "--model", "resnet8", "--epochs", "1",
            "--batch-size", "8", "--eval-batch-size", "8", "--out", str(out), "--name", "r", "--no-progress",
            "--device", "cpu", "--threads", "1", *extra]


def test_skip_corrupt_skips_and_counts_bad_files_of_a_per_image_set(tmp_path, capsys):
    tree = varied_tree(tmp_path / "pets" / "train")
    assert cli.main(run_args(tree, tmp_path / "runs", "--workers", "1")) == 2  # without the flag: it stops
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("cutmix train: error: cannot decode ")
    assert str(tree / "bee" / "03.png") in last or str(tree / "cat" / "05.png") in last  # whichever comes first
    assert last.endswith("(--skip-corrupt skips unreadable files)") and "Traceback" not in last

    assert cli.main(run_args(tree, tmp_path / "runs", "--skip-corrupt", "--name", "s")) == 0
    err = capsys.readouterr().err
    assert "skipped 2 unreadable image(s) (2 in all)" in err
    assert "run " in err and "pets-train (24 images)" in err  # named after the dataset, not the split folder
    line = json.loads((tmp_path / "runs" / "s" / "metrics.jsonl").read_text())
    assert line["skipped_images"] == 2 and line["val_images"] == 22  # both bad files left out of evaluation too


def test_a_zero_byte_file_is_named(tmp_path):
    tree = varied_tree(tmp_path / "t")
    data = FolderDataset(tree)
    empty = data.listing.members.index("cat/05.png")
    with pytest.raises(CorruptImageError, match=r"cannot decode .*cat/05\.png: the file is empty \(0 bytes\)"):
        data[empty]
    broken = data.listing.members.index("bee/03.png")
    with pytest.raises(CorruptImageError, match=r"bee/03\.png: not an image format Pillow can identify") as info:
        data[broken]
    assert "BytesIO" not in str(info.value)
    (tmp_path / "same" / "a").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "same" / "a" / "0.png")
    (tmp_path / "same" / "a" / "1.png").write_bytes(b"")
    with pytest.raises(CorruptImageError, match=r"a/1\.png: the file is empty"):
        load_images(tmp_path / "same", cache_dir=tmp_path / "cache")


def test_skipped_items_are_left_out_of_the_batch(tmp_path):
    tree = varied_tree(tmp_path / "t")
    data = FolderDataset(tree, skip_corrupt=True)
    items = [data[data.listing.members.index(m)] for m in ("ant/00.png", "cat/05.png", "bee/00.png")]
    assert isinstance(items[1], Skipped) and items[1].where.endswith("cat/05.png")
    same = [(i[0][:, :20, :20], i[1]) for i in items if not isinstance(i, Skipped)] + [items[1]]
    images, labels, skipped = collate_skipping(same)
    assert images.shape == (2, 3, 20, 20) and labels.tolist() == [0, 1] and skipped == [items[1]]
    assert collate_skipping([items[1]]) == (None, None, [items[1]])
    assert isinstance(open_dataset(str(tree), "train", skip_corrupt=True), FolderDataset)


def test_train_and_val_samples_apply_to_per_image_sets(tmp_path):
    tree = varied_tree(tmp_path / "t", per_class=10, bad=False)
    config = cfg.TrainConfig()
    config.data.dataset = config.data.val = str(tree)
    config.data.train_samples, config.data.val_samples = 12, 9
    config.batch_size = 4
    data = build_data(config, Context())
    assert len(data.train.dataset) == 12 and len(data.val.dataset) == 9
    train_labels = torch.tensor(data.train.dataset.targets)
    assert torch.bincount(train_labels).tolist() == [4, 4, 4]  # stratified: each class keeps its share
    assert data.info["train"].endswith("(12 images)") and len(data.train) == 3
    members = data.train.dataset.listing.members
    assert members == sorted(members) and set(members) <= set(FolderDataset(tree).listing.members)
    assert data.train.dataset.subset(12) is data.train.dataset  # no-op at its own size


def test_seeded_indices_are_a_sorted_seeded_subset() -> None:
    from cutmix.data.imageset import seeded_indices

    a = seeded_indices(100, 10, seed=1)
    assert torch.equal(a, seeded_indices(100, 10, seed=1)) and not torch.equal(a, seeded_indices(100, 10, seed=0))
    assert a.tolist() == sorted(set(a.tolist())) and len(a) == 10 and int(a.max()) < 100
    assert torch.equal(seeded_indices(5, None, seed=0), torch.arange(5))
    assert torch.equal(seeded_indices(5, 9, seed=0), torch.arange(5))
    # the draw the evaluation subsets have always used: the first `limit` of one seeded permutation, sorted
    expected = torch.randperm(100, generator=torch.Generator().manual_seed(1))[:10].sort().values
    assert torch.equal(a, expected)
