#!/usr/bin/env python3
"""Training throughput of ``cutmix train`` against a plain PyTorch loop written the way the paper's released
``train.py`` is (per-image PIL transforms in a DataLoader, NCHW model, in-place slice CutMix with NumPy draws,
two cross-entropies weighted by λ, per-step accuracy read back to the host).

Both train the same model (our CIFAR ResNet-20), batch, optimizer and data (the same stratified subset of the
CIFAR-10 JPEG zip, decoded once) for ``--epochs`` epochs with CutMix α 1 at probability 0.5, one thread each.
``--mode side-by-side`` (default) runs the two as concurrent processes, so both see the same machine; ``--mode
alone`` runs them one after the other. Reported: the median training images/s over the epochs after the first
(data loading and augmentation included, evaluation excluded).

    python benchmarks/train_speed.py --data ../shared/data/cifar10-jpeg --epochs 4
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def reference_loop(data_dir: Path, epochs: int, train_samples: int, batch_size: int, threads: int) -> list[float]:
    """The stand-in for the released code; returns the training images/s of each epoch."""
    import numpy as np
    import torch
    from PIL import Image
    from torch import nn
    from torchvision import transforms

    from cutmix.data import load_images
    from cutmix.models import build_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    np.random.seed(0)
    data = load_images(data_dir / "cifar10-train.zip").subset(train_samples)
    pixels = data.images.permute(0, 2, 3, 1).numpy()  # HWC uint8, as torchvision's CIFAR10 keeps them
    labels = data.labels.tolist()
    augment = transforms.Compose([
        transforms.RandomCrop(32, padding=4),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    ])

    class PilSet(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(labels)

        def __getitem__(self, i: int):
            return augment(Image.fromarray(pixels[i])), labels[i]

    loader = torch.utils.data.DataLoader(PilSet(), batch_size=batch_size, shuffle=True, num_workers=0,
                                         drop_last=True)
    model = build_model("resnet20", 10)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)

    def box(size: tuple[int, ...], lam: float) -> tuple[int, int, int, int]:
        w, h = size[2], size[3]
        cut = np.sqrt(1.0 - lam)
        cw, ch = int(w * cut), int(h * cut)
        cx, cy = np.random.randint(w), np.random.randint(h)
        return (int(np.clip(cx - cw // 2, 0, w)), int(np.clip(cy - ch // 2, 0, h)),
                int(np.clip(cx + cw // 2, 0, w)), int(np.clip(cy + ch // 2, 0, h)))

    rates = []
    for _ in range(epochs):
        model.train()
        seen, correct, start = 0, 0, time.perf_counter()
        for images, target in loader:
            if np.random.rand(1) < 0.5:
                lam = np.random.beta(1.0, 1.0)
                perm = torch.randperm(images.size(0))
                x0, y0, x1, y1 = box(images.size(), lam)
                images[:, :, x0:x1, y0:y1] = images[perm, :, x0:x1, y0:y1]
                lam = 1 - (x1 - x0) * (y1 - y0) / (images.size(-1) * images.size(-2))
                output = model(images)
                loss = criterion(output, target) * lam + criterion(output, target[perm]) * (1.0 - lam)
            else:
                output = model(images)
                loss = criterion(output, target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            correct += (output.argmax(1) == target).sum().item()  # the released code's per-step meters
            seen += images.size(0)
            _ = loss.item()
        rates.append(seen / (time.perf_counter() - start))
    return rates


def cutmix_command(data_dir: Path, out: Path, epochs: int, train_samples: int, batch_size: int,
                   threads: int) -> list[str]:
    return [sys.executable, "-m", "cutmix", "train", "--data", str(data_dir / "cifar10-train.zip"), "--val-data",
            str(data_dir / "cifar10-test.zip"), "--train-samples", str(train_samples), "--model", "resnet20",
            "--batch-size", str(batch_size), "--epochs", str(epochs), "--eval-every", str(epochs),
            "--val-samples", "1000", "--mix", "cutmix", "--alpha", "1", "--prob", "0.5", "--threads", str(threads),
            "--no-progress", "--out", str(out), "--name", "speed"]


def steady(rates: list[float]) -> float:
    """The median of the epochs after the first (the first pays warm-up)."""
    return statistics.median(rates[1:] if len(rates) > 1 else rates)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "cifar10-jpeg"),
                        help="directory of cifar10-train.zip and cifar10-test.zip")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--train-samples", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--mode", choices=["side-by-side", "alone"], default="side-by-side")
    parser.add_argument("--reference-only", action="store_true", help=argparse.SUPPRESS)  # the child process
    parser.add_argument("--ours", default="", help="extra cutmix train flags, e.g. '--amp bf16' (the reference "
                        "loop stays float32, as released)")
    parser.add_argument("--json", help="write the per-epoch rates and the summary here")
    args = parser.parse_args(argv)
    data = Path(args.data).expanduser().resolve()
    if args.reference_only:
        print(json.dumps(reference_loop(data, args.epochs, args.train_samples, args.batch_size, args.threads)))
        return 0
    ref_cmd = [sys.executable, __file__, "--reference-only", "--data", str(data), "--epochs", str(args.epochs),
               "--train-samples", str(args.train_samples), "--batch-size", str(args.batch_size), "--threads",
               str(args.threads)]
    with tempfile.TemporaryDirectory() as tmp:
        ours_cmd = cutmix_command(data, Path(tmp), args.epochs, args.train_samples, args.batch_size, args.threads)
        ours_cmd += args.ours.split()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        if args.mode == "side-by-side":
            ref = subprocess.Popen(ref_cmd, stdout=subprocess.PIPE, text=True, env=env)
            ours = subprocess.run(ours_cmd, capture_output=True, text=True, env=env)
            ref_out = ref.communicate()[0]
        else:
            ref_out = subprocess.run(ref_cmd, stdout=subprocess.PIPE, text=True, env=env, check=True).stdout
            ours = subprocess.run(ours_cmd, capture_output=True, text=True, env=env)
        if ours.returncode != 0:
            raise SystemExit(f"cutmix train failed:\n{ours.stderr[-2000:]}")
        metrics = [json.loads(line) for line in (Path(tmp) / "speed" / "metrics.jsonl").read_text().splitlines()]
        header = next(line for line in ours.stderr.splitlines() if line.startswith("run "))
    ref_rates = json.loads(ref_out.strip().splitlines()[-1])
    our_rates = [m["train_images_per_s"] for m in metrics]
    result = {"mode": args.mode, "ours": args.ours, "epochs": args.epochs, "threads": args.threads,
              "reference": ref_rates, "cutmix": our_rates, "reference_steady": steady(ref_rates),
              "cutmix_steady": steady(our_rates)}
    result["speedup"] = result["cutmix_steady"] / result["reference_steady"]
    print(header)
    print(f"images/s per epoch  reference: {', '.join(f'{r:.0f}' for r in ref_rates)}")
    print(f"images/s per epoch  cutmix:    {', '.join(f'{r:.0f}' for r in our_rates)}")
    print(f"steady (median of epochs 2..): reference {result['reference_steady']:.0f}, cutmix "
          f"{result['cutmix_steady']:.0f} -> {result['speedup']:.2f}x ({args.mode}, {args.threads} thread(s) each)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
