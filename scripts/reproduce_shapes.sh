#!/usr/bin/env bash
# results/shapes-eval.md: baseline, Mixup, Cutout and CutMix on the builtin shapes dataset with the default
# budget (ResNet-20, 8 epochs, cosine lr 0.1, batch 128), two seeds each, then every evaluation suite and the report.
# CPU: about 8 x 5-13 minutes of training (two runs at a time with one thread each) and ~3 minutes of evaluation
# per run. Usage: scripts/reproduce_shapes.sh [OUT_DIR] (default runs/shapes-eval).
set -euo pipefail
out=${1:-runs/shapes-eval}
seeds=${SEEDS:-"0 1"}
mkdir -p "$out"

train() {  # method seed extra-flags...
  local m=$1 s=$2; shift 2
  [ -f "$out/$m-s$s/summary.json" ] && return 0
  if [ -f "$out/$m-s$s/last.pt" ]; then cutmix train --resume "$out/$m-s$s"; return; fi
  cutmix train --mix "$m" "$@" --seed "$s" --threads 1 --out "$out" --name "$m-s$s" --no-progress
}

for s in $seeds; do
  train none "$s" &
  train cutmix "$s" &                                    # the paper's CIFAR recipe: alpha 1, prob 0.5 (default)
  wait
  train mixup "$s" --alpha 1.0 --prob 1.0 &             # Mixup as in its paper: alpha 1 on every batch
  train cutout "$s" --cutout-size 16 --prob 1.0 &       # Cutout as in its paper: a 16x16 square on every image
  wait
done

runs=()
for m in none mixup cutout cutmix; do for s in $seeds; do runs+=("$out/$m-s$s"); done; done
for r in "${runs[@]}"; do
  [ -f "$r/eval.json" ] || cutmix eval "$r" --robust-samples 1000 --threads 1 --no-progress
done
cutmix report "${runs[@]}" --out "$out/report" --title "shapes: baseline vs Mixup vs Cutout vs CutMix"
