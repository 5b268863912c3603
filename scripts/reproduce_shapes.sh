#!/usr/bin/env bash
# results/shapes-eval.md: baseline, Mixup, Cutout and CutMix on the builtin shapes dataset with one budget (ResNet-20,
# cosine lr 0.1, batch 128; EPOCHS of them), for each seed in SEEDS, then every evaluation suite and the report.
#   EPOCHS=8  THREADS=1 scripts/reproduce_shapes.sh runs/shapes      # the default `cutmix train` budget
#   EPOCHS=20 SEEDS="0 1" THREADS=1 scripts/reproduce_shapes.sh runs/shapes-e20  # a longer budget, two seeds
# On a CPU the results are deterministic for a given thread count (runs may go in parallel without changing them).
# Finished runs are skipped and interrupted ones resumed, so the script can be stopped and started again.
set -euo pipefail
out=${1:-runs/shapes}
epochs=${EPOCHS:-8}
seeds=${SEEDS:-0}
threads=${THREADS:-1}
mkdir -p "$out"

train() {  # method seed extra-flags...
  local m=$1 s=$2; shift 2
  [ -f "$out/$m-s$s/summary.json" ] && return 0
  if [ -f "$out/$m-s$s/last.pt" ]; then cutmix train --resume "$out/$m-s$s"; return; fi
  cutmix train --mix "$m" "$@" --epochs "$epochs" --seed "$s" --threads "$threads" --out "$out" --name "$m-s$s" \
    --no-progress
}

runs=()
for s in $seeds; do
  train none "$s"
  train cutmix "$s"                                   # the paper's CIFAR recipe: alpha 1, prob 0.5 (the default)
  train mixup "$s" --alpha 1.0 --prob 1.0             # Mixup as in its paper: alpha 1 on every batch
  train cutout "$s" --cutout-size 16 --prob 1.0       # Cutout as in its paper: a 16x16 square on every image
  runs+=("$out/none-s$s" "$out/mixup-s$s" "$out/cutout-s$s" "$out/cutmix-s$s")
done
for r in "${runs[@]}"; do
  [ -f "$r/eval.json" ] || cutmix eval "$r" --robust-samples 1000 --threads "$threads" --no-progress
done
cutmix report "${runs[@]}" --out "$out/report" --title "shapes, $epochs epochs: baseline vs Mixup vs Cutout vs CutMix"
