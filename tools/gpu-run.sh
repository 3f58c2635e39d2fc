#!/usr/bin/env bash
# Packs the GPU check harness for the GPU machine (see gpu.md in the shared docs beside the repository), which has CUDA and PyTorch but no .NET.
#
#   tools/gpu-run.sh            publish tools/MicroExpr.GpuCheck self-contained and pack it into .gpu/app.txz
#   tools/gpu-run.sh --local    also run the published app here on ILGPU's CPU accelerator (--quick: the kernel suites on small
#                               shapes, then the train step on slstt-tiny, 2 clips of 2 frames: one slstt-bench step takes
#                               minutes on that accelerator) and syntax-check benchmarks/pytorch_peer.py (run it too where
#                               PyTorch is installed)
#
# Then call the device tool's `run` with carry [".gpu"], timeout_s 600 and this command line (one run: the ILGPU kernels and a
# training step of slstt-bench (batch 8) and slstt-b16 (batch 32, T 8, 224 px) in the engine, and the same in PyTorch fp32
# eager, on one GPU; PyTorch first, as its run is short and bounded):
#
#   tar xJf .gpu/app.txz -C /tmp && nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,memory.total --format=csv | tee $OUT/gpu.log; \
#   timeout 190 python3 benchmarks/pytorch_peer.py --budget-s 100 2>&1 | tee $OUT/torch.log; \
#   timeout 370 /tmp/app/MicroExpr.GpuCheck --device cuda --json --budget-s 100 2>&1 | tee -a $OUT/gpu.log
#
# The JSON lines named train_step_slstt-bench and train_step_slstt-b16 in gpu.log and torch.log are the comparison (same fields:
# median_ms, min_ms, max_ms, clips_per_s, loss_first, loss_last, device_mem_mb). --budget-s cuts a model's timed steps (to no
# fewer than 5) when 20 would take longer, so that the whole call fits in the tool's 600 s.
#
# .gpu/ must be ignored by git (the root .gitignore lists it); everything carried stays < 64 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
git check-ignore -q .gpu/app.txz || { echo "error: .gpu/ is not ignored by git; add it to .gitignore" >&2; exit 1; }
rm -rf .gpu/app .gpu/app.txz
mkdir -p .gpu
dotnet publish tools/MicroExpr.GpuCheck -c Release -r linux-x64 --self-contained -o .gpu/app
if ls .gpu/app | grep -qi opencv; then echo "error: OpenCV found in the published app; GpuCheck must not reference MicroExpr.Data" >&2; exit 1; fi
tar cJf .gpu/app.txz -C .gpu app
if [[ "${1:-}" == "--local" ]]; then
  .gpu/app/MicroExpr.GpuCheck --device ilgpu-cpu --quick --json
  python3 -c 'import sys; compile(open(sys.argv[1]).read(), sys.argv[1], "exec")' benchmarks/pytorch_peer.py  # no __pycache__
  if python3 -c "import torch" 2>/dev/null; then
    python3 benchmarks/pytorch_peer.py --train-step --quick
  else
    echo "PyTorch is not installed here: benchmarks/pytorch_peer.py syntax-checked only"
  fi
fi
rm -rf .gpu/app
ls -lh .gpu/app.txz
