#!/usr/bin/env bash
# One prepared GPU check, about 8 minutes on one GPU; everything goes into one folder to bring back:
#   1. the CUDA tests (pytest -m cuda)                      -> pytest.txt
#   2. the op benchmark on the GPU (cutmix bench)            -> bench-ops.json / .txt
#   3. CutMix's share of a ResNet-50 step at 224 px          -> bench-step.json / .txt
#   4. a short four-arm CIFAR-10 run with the fast preset    -> runs/ (baseline, mixup, cutout, cutmix)
# and summary.md with each stage's status, seconds and the arms' errors. A failed stage does not stop the others;
# the exit status is 1 if any stage failed.
#
#   bash scripts/gpu_check.sh                       # writes to $OUT if set, else ./gpu-check-out
#   GPU_CHECK_EPOCHS=6 bash scripts/gpu_check.sh    # longer arms (default 4 epochs each)
#   GPU_CHECK_TINY=1 bash scripts/gpu_check.sh      # CPU smoke test: tiny models, sizes and shapes data, 1 epoch
#
# CIFAR-10: the first of .carry/cifar10-jpeg, shared/data/cifar10-jpeg, ../shared/data/cifar10-jpeg holding
# cifar10-train.zip and cifar10-test.zip (override with GPU_CHECK_DATA=DIR); without one the arms are skipped.
set -u
cd "$(dirname "$0")/.."
out="${OUT:-./gpu-check-out}"
mkdir -p "$out/runs"
py="${PYTHON:-python}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
failed=0
: > "$out/stages.tsv"

stage() {  # stage NAME LOGFILE CMD...: run, record status and seconds
    local name=$1 log=$2 start rc
    shift 2
    start=$(date +%s)
    echo "== $name: $*" | tee -a "$out/commands.txt"
    "$@" > "$out/$log" 2>&1
    rc=$?
    printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$(( $(date +%s) - start ))" "$log" >> "$out/stages.tsv"
    [ "$rc" -eq 0 ] || failed=1
    tail -n 3 "$out/$log"
}

if [ "${GPU_CHECK_TINY:-0}" = 1 ]; then
    device=cpu
    export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
    ops=(--device cpu --threads 1 --dtypes float32 --shapes "4,3,16,16" --min-time 0.01)
    step=(--device cpu --threads 1 --models "resnet20:4x3x32x32" --formats none --min-time 0.05 --rounds 2)
    epochs=1
    data=(--data shapes --train-samples 64 --val-samples 32 --batch-size 32 --model resnet20 --set compile=false)
    pytest_args=(tests/test_cuda.py)
else
    device=cuda
    ops=(--device cuda --min-time 0.3)
    step=(--device cuda --models "tv:resnet50:128x3x224x224" --min-time 1.0)
    epochs="${GPU_CHECK_EPOCHS:-4}"
    data=()
    for dir in "${GPU_CHECK_DATA:-}" .carry/cifar10-jpeg shared/data/cifar10-jpeg ../shared/data/cifar10-jpeg; do
        if [ -n "$dir" ] && [ -f "$dir/cifar10-train.zip" ] && [ -f "$dir/cifar10-test.zip" ]; then
            data=(--data "$dir/cifar10-train.zip" --val-data "$dir/cifar10-test.zip")
            break
        fi
    done
    pytest_args=(-m cuda tests)
fi

"$py" - > "$out/environment.json" 2>&1 <<'PY'
import json, platform, torch
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
print(json.dumps({"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
                  "gpu": gpu}, indent=2))
PY

stage cuda-tests pytest.txt "$py" -m pytest -q -p no:cacheprovider "${pytest_args[@]}"
stage bench-ops bench-ops.txt "$py" -m cutmix bench "${ops[@]}" --json "$out/bench-ops.json"
stage bench-step bench-step.txt "$py" -m cutmix bench step "${step[@]}" --json "$out/bench-step.json"
if [ "${#data[@]}" -eq 0 ]; then
    printf 'train\tskipped\t0\t(no cifar10-jpeg folder found)\n' >> "$out/stages.tsv"
else
    for mix in none mixup cutout cutmix; do
        name="arm-$mix"
        rm -rf "${out:?}/runs/$name"  # a rerun into the same folder starts the arm afresh
        stage "train-$mix" "train-$mix.txt" "$py" -m cutmix train --preset cifar10-resnet18-fast "${data[@]}" \
            --mix "$mix" --epochs "$epochs" --device "$device" --out "$out/runs" --name "$name" --no-progress
    done
fi

"$py" - "$out" > "$out/summary.md" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
env = json.loads((out / "environment.json").read_text() or "{}")
print(f"# GPU check\n\n{env}\n\n| stage | status | seconds | log |\n|---|---|---|---|")
for line in (out / "stages.tsv").read_text().splitlines():
    print("| " + " | ".join(line.split("\t")) + " |")
runs = sorted((out / "runs").glob("*/summary.json"))
if runs:
    print("\n| arm | epochs | final val top-1 error | best | img/s | wall s |\n|---|---|---|---|---|---|")
    for path in runs:
        s = json.loads(path.read_text())
        err = s.get("final_val_top1_err")
        best = s.get("best_val_top1_err")
        print(f"| {path.parent.name} | {s.get('epochs')} | {'-' if err is None else f'{err:.2%}'} | "
              f"{'-' if best is None else f'{best:.2%}'} | {s.get('mean_train_images_per_s')} | "
              f"{s.get('wall_time_s')} |")
PY
cat "$out/summary.md"
exit "$failed"
