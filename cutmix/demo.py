"""``python -m cutmix.demo``: mix one batch with every variant and print what each sample became.

Each image of the demo batch is filled with its own class id, so the pixel shares of a mixed image can be read off
its pixels and compared with the targets: for CutMix with area labels they agree exactly.
"""

from __future__ import annotations

import argparse

import torch

import cutmix


def demo_batch(n: int, num_classes: int, size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images whose every pixel holds the image's class id, so mixing is visible in the pixel counts."""
    labels = torch.randint(0, num_classes, (n,), generator=generator)
    images = labels.to(torch.uint8).view(n, 1, 1, 1).expand(n, 3, size, size).contiguous()
    return images, labels


def pixel_shares(images: torch.Tensor, num_classes: int) -> torch.Tensor:
    """[N, K] share of each class id among each image's pixels (channel 0)."""
    ids = images[:, 0].reshape(images.shape[0], -1).long()
    counts = torch.zeros(images.shape[0], num_classes).scatter_add_(1, ids, torch.ones_like(ids, dtype=torch.float))
    return counts / ids.shape[1]


def variants(num_classes: int, generator: torch.Generator) -> dict[str, torch.nn.Module]:
    kw = {"generator": generator}
    return {
        "CutMix (paper)": cutmix.CutMix(num_classes, alpha=1.0, **kw),
        "CutMix per-sample": cutmix.CutMix(num_classes, per_sample=True, **kw),
        "CutMix inside": cutmix.CutMix(num_classes, per_sample=True, placement="inside", **kw),
        "CutMix centre-Gaussian": cutmix.CutMix(num_classes, per_sample=True, box="gaussian", **kw),
        "CutMix fixed 16x16": cutmix.CutMix(num_classes, per_sample=True, box="fixed", placement="inside", **kw),
        "CutMix one-hot label": cutmix.CutMix(num_classes, per_sample=True, label="onehot", **kw),
        "CutMix complete label": cutmix.CutMix(num_classes, per_sample=True, label="complete", **kw),
        "Mixup": cutmix.MixUp(num_classes, per_sample=True, **kw),
        "Cutout 16x16": cutmix.Cutout(num_classes, size=16, **kw),
    }


def describe(row: torch.Tensor) -> str:
    top = torch.argsort(row, descending=True)[:2]
    parts = [f"{row[i]:.3f}·c{int(i)}" for i in top if row[i] > 0]
    return " + ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cutmix.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=6)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    g = torch.Generator().manual_seed(args.seed)
    images, labels = demo_batch(args.batch, args.classes, args.size, g)
    print(f"batch of {args.batch} uint8 images {args.size}x{args.size}; labels {labels.tolist()}\n")
    for name, mix in variants(args.classes, g).items():
        mixed, targets = mix(images, labels)
        shares = pixel_shares(mixed, args.classes)
        print(f"{name}  ({mixed.dtype}, targets {tuple(targets.shape)}, rows sum to "
              f"{targets.sum(1).min():.6f}..{targets.sum(1).max():.6f})")
        print(f"  {'#':>2}  {'pixels':<24} {'targets':<24}")
        for i in range(args.batch):
            print(f"  {i:>2}  {describe(shares[i]):<24} {describe(targets[i]):<24}")
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
