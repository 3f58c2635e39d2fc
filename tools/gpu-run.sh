#!/usr/bin/env bash
# Packs the GPU check harness for the GPU machine (see gpu.md in the shared docs beside the repository), which has CUDA and PyTorch but no .NET.
#
#   tools/gpu-run.sh            publish tools/MicroExpr.GpuCheck self-contained and pack it into .gpu/app.txz
#   tools/gpu-run.sh --local    also run the published app here on ILGPU's CPU accelerator (--quick) as a smoke test
#
# Then call the device tool's `run` with carry [".gpu"] and this command line (one run: ILGPU and PyTorch on one GPU):
#
#   tar xJf .gpu/app.txz -C /tmp && nvidia-smi --query-gpu=name,clocks.sm,clocks.mem --format=csv | tee $OUT/gpu.log && \
#   /tmp/app/MicroExpr.GpuCheck --device cuda --json 2>&1 | tee -a $OUT/gpu.log; \
#   python3 benchmarks/pytorch_peer.py 2>&1 | tee $OUT/torch.log
#
# .gpu/ must be ignored by git (the root .gitignore lists it); everything carried stays < 64 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
git check-ignore -q .gpu/app.txz || { echo "error: .gpu/ is not ignored by git; add it to .gitignore" >&2; exit 1; }
rm -rf .gpu/app .gpu/app.txz
mkdir -p .gpu
dotnet publish tools/MicroExpr.GpuCheck -c Release -r linux-x64 --self-contained -o .gpu/app
tar cJf .gpu/app.txz -C .gpu app
if [[ "${1:-}" == "--local" ]]; then
  .gpu/app/MicroExpr.GpuCheck --device ilgpu-cpu --quick
fi
rm -rf .gpu/app
ls -lh .gpu/app.txz
