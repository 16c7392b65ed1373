#!/usr/bin/env bash
# Fine-tuning from an imported backbone against the same run from random weights (a measured
# experiment, minutes on a CPU; not part of ctest).
#
#   tests/reference/pretrained_finetune.sh [WORKER] [DIR]
#
# 1. trains a small EfficientNet-B4 (width 0.1, depth 0.2, 64 px) end to end for 10 epochs on
#    the synthetic set (seed 7) and exports its backbone as safetensors;
# 2. trains phase 1 only (backbone frozen, 12 epochs) on another synthetic set (seed 8), once
#    from that backbone (model.pretrained) and once from random weights;
# 3. prints the best and the last phase-1 mAP@0.5 of both.
set -euo pipefail
worker=${1:-build/bin/smartcash-worker}
worker=$(cd "$(dirname "$worker")" && pwd)/$(basename "$worker")
dir=${2:-$(mktemp -d -t smartcash-finetune-XXXXXX)}
mkdir -p "$dir"
cd "$dir"

cat > pretrain.yaml <<'YAML'
model: {backbone: efficientnet_b4, width_multiple: 0.1, depth_multiple: 0.2, img_size: 64, drop_connect: 0.05}
data:
  dataset: synthetic
  synthetic: {images: 160, size: 96, seed: 7}
training:
  effective_batch: 8
  phase1: {epochs: 0, lr: {backbone: 0, neck: 3.0e-3, head: 3.0e-3}}
  phase2: {epochs: 10, lr: {backbone: 3.0e-3, neck: 3.0e-3, head: 3.0e-3}}
  warmup_steps: 4
  checkpoint_every_steps: 0
  early_stopping: {patience: 0}
tiers:
  - {name: cpu, device: cpu, micro_batch: 8, threads: 1, memory_limit: 6GiB}
YAML
sed -e 's/seed: 7}/seed: 8}/' -e 's/phase1: {epochs: 0/phase1: {epochs: 12/' \
    -e 's/phase2: {epochs: 10/phase2: {epochs: 0/' pretrain.yaml > random.yaml
sed -e 's/drop_connect: 0.05}/drop_connect: 0.05, pretrained: backbone.safetensors}/' \
    random.yaml > finetune.yaml

"$worker" train --config pretrain.yaml --run-dir runs/pretrain > pretrain.log 2>&1
last=$(ls runs/pretrain/checkpoints/step-*.pt | sort | tail -1)
"$worker" export --checkpoint "$last" --out backbone.safetensors --backbone-only
"$worker" train --config finetune.yaml --run-dir runs/finetune > finetune.log 2>&1
"$worker" train --config random.yaml --run-dir runs/random > random.log 2>&1

for run in finetune random; do
  python3 - "$run" "runs/$run/metrics.jsonl" <<'PY'
import json, sys
maps = [line["map50"] for line in map(json.loads, open(sys.argv[2])) if line.get("type") == "epoch"]
print(f"{sys.argv[1]:<9} phase 1, {len(maps)} epochs: best mAP@0.5 {max(maps):.3f}, last {maps[-1]:.3f}")
PY
done
echo "runs in $dir"
