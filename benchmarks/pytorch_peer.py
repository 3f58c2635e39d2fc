#!/usr/bin/env python3
"""PyTorch peer for tools/MicroExpr.GpuCheck: the same kernel shapes, and a training step of the same models, fp32, on CUDA.

Kernels (--kernels): one JSON line per result: name, shape, median_ms, gflops or gbps, plus the attention backend used.
Timing: torch.cuda.Event around each launch batch, warm-up first, median of >= 20 samples.
FLOP/byte counts match the GpuCheck harness: attention fwd 4*BH*N*N*D, bwd 10*BH*N*N*D; LayerNorm fwd 8 B/elem,
bwd 12 B/elem; softmax fwd 8 B/elem, bwd 12 B/elem; GEMM 2*M*N*K; conv 2*N*Cout*P*Cin*k/G (backward twice that).

Train step (--train-step): slstt-bench (batch 8, [8, 8, 3, 112, 112]) and slstt-b16 (batch 32, [32, 8, 3, 224, 224]), built
as the engine builds them (src/MicroExpr.Models: VisionTransformer, LstmAggregator, SlsttModel) and checked by parameter
count; forward, mean cross-entropy, backward, torch.optim.AdamW (lr 1e-4, betas 0.9/0.999, eps 1e-8, wd 0.01; PyTorch's
default implementation), zero_grad. fp32 eager: no torch.compile, no AMP, TF32 off. Warm-up >= 3 steps and >= 2 s, then
20 timed steps (fewer, at least 5, when they would take over --budget-s), each between CUDA events with
torch.cuda.synchronize() around it; one JSON line per model with the fields GpuCheck prints (name, model, impl, device,
accelerator, batch, frames, params, median_ms, min_ms, max_ms, clips_per_s, loss_first, loss_last, device_mem_mb).

Without CUDA the kernels are skipped and the train step runs on the CPU on small batches: a syntax, shape and
parameter-count check, not the comparison (a note says so).

Usage: python3 benchmarks/pytorch_peer.py [--kernels | --train-step] [--runs 25] [--train-models slstt-bench:8x8,slstt-b16:32x8]
                                          [--steps 20] [--warmup 3] [--budget-s 150] [--quick]
"""
import argparse
import gc
import json
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# fp32 like the ILGPU kernels: no TF32 anywhere (matmul, cuDNN).
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False


def time_ms(fn, runs):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record(); fn(); end.record(); torch.cuda.synchronize()
    reps = max(1, min(100, int(1.0 / max(start.elapsed_time(end), 1e-4)) + 1))
    samples = []
    for _ in range(runs):
        start.record()
        for _ in range(reps):
            fn()
        end.record()
        torch.cuda.synchronize()
        samples.append(start.elapsed_time(end) / reps)
    return statistics.median(samples)


def emit(name, shape, ms, **extra):
    print(json.dumps({"device": torch.cuda.get_device_name(0), "name": name, "shape": shape, "median_ms": ms, **extra}), flush=True)


def run_kernels(runs):
    dev = "cuda"
    g = torch.Generator(device=dev).manual_seed(0)

    def rnd(*shape):
        return torch.rand(*shape, device=dev, generator=g) * 2 - 1

    gemms = [("gemm_nt", 3200, 576, 192, False, True), ("gemm_tn", 576, 192, 3200, True, False), ("gemm_nn", 1024, 1024, 1024, False, False)]
    for name, m, n, k, ta, tb in gemms:
        A = rnd(k, m) if ta else rnd(m, k)
        B = rnd(n, k) if tb else rnd(k, n)
        opA = A.t() if ta else A
        opB = B.t() if tb else B
        ms = time_ms(lambda: torch.matmul(opA, opB), runs)
        emit(name, [m, n, k], ms, gflops=2.0 * m * n * k / ms / 1e6)

    attn = [("model", 192, 50, 64), ("vit", 384, 197, 64), ("long", 16, 1024, 64), ("long", 4, 4096, 64)]
    # fp32 rules out the flash backend, so each SDPA backend that accepts fp32 is timed explicitly and recorded
    # (mem-efficient is what the default picks for fp32 on recent GPUs; math is the unfused reference).
    from torch.nn.attention import SDPBackend, sdpa_kernel
    backends = [("efficient", SDPBackend.EFFICIENT_ATTENTION), ("math", SDPBackend.MATH)]
    for tag, bh, n, d in attn:
        q = rnd(1, bh, n, d).requires_grad_(True)
        k = rnd(1, bh, n, d).requires_grad_(True)
        v = rnd(1, bh, n, d).requires_grad_(True)
        do = rnd(1, bh, n, d)
        mm = 2.0 * bh * n * n * d
        for bname, backend in backends:
            def fwd():
                return F.scaled_dot_product_attention(q, k, v)

            def run(f):
                with sdpa_kernel(backend):
                    return f()

            try:
                ms = time_ms(lambda: run(fwd), runs)
            except RuntimeError as e:  # backend not available for this shape/dtype
                emit(f"attention_fwd_{tag}", [bh, n, d], None, sdpa_backend=bname, error=str(e).splitlines()[0])
                continue
            emit(f"attention_fwd_{tag}", [bh, n, d], ms, gflops=2 * mm / ms / 1e6, sdpa_backend=bname)
            o = run(fwd)

            def bwd():
                torch.autograd.grad(o, (q, k, v), do, retain_graph=True)

            ms = time_ms(lambda: run(bwd), runs)
            emit(f"attention_bwd_{tag}", [bh, n, d], ms, gflops=5 * mm / ms / 1e6, sdpa_backend=bname)

    for tag, rows, c in [("model", 3200, 192), ("vit", 32 * 197, 768)]:
        x = rnd(rows, c).requires_grad_(True)
        w = rnd(c).requires_grad_(True)
        b = rnd(c).requires_grad_(True)
        dy = rnd(rows, c)
        ms = time_ms(lambda: F.layer_norm(x, (c,), w, b, 1e-5), runs)
        emit(f"layernorm_fwd_{tag}", [rows, c], ms, gbps=8.0 * rows * c / ms / 1e6)
        y = F.layer_norm(x, (c,), w, b, 1e-5)
        ms = time_ms(lambda: torch.autograd.grad(y, (x, w, b), dy, retain_graph=True), runs)
        emit(f"layernorm_bwd_{tag}", [rows, c], ms, gbps=12.0 * rows * c / ms / 1e6)

    for tag, rows, cols in [("model", 9600, 50), ("vit", 384 * 197, 197)]:
        x = rnd(rows, cols).requires_grad_(True)
        dy = rnd(rows, cols)
        for name, f in [("softmax", F.softmax), ("logsoftmax", F.log_softmax)]:
            ms = time_ms(lambda: f(x, -1), runs)
            emit(f"{name}_fwd_{tag}", [rows, cols], ms, gbps=8.0 * rows * cols / ms / 1e6)
            y = f(x, -1)
            ms = time_ms(lambda: torch.autograd.grad(y, x, dy, retain_graph=True), runs)
            emit(f"{name}_bwd_{tag}", [rows, cols], ms, gbps=12.0 * rows * cols / ms / 1e6)

    # Convolutions (tools/MicroExpr.GpuCheck/ConvSuite.cs): 64 frames at 112 px (ResNet-18's 3x3 layers at 28 and 14 px,
    # the 7x7/2 stem) and a 3x3x3 conv3d on 8 clips of 8 frames. FLOPs 2*N*Cout*P*Cin*k/G per forward; the backward
    # (dx, dw, db) counted as twice that. cuDNN in fp32 (TF32 off), benchmark mode off (the default algorithm choice).
    convs = [("conv2d_3x3_64@28", [64, 64, 28, 28], 64, (3, 3), 1, 1), ("conv2d_3x3_128@14", [64, 128, 14, 14], 128, (3, 3), 1, 1),
             ("conv2d_stem_7x7/2", [64, 3, 112, 112], 64, (7, 7), 2, 3), ("conv3d_3x3x3_64", [8, 64, 8, 28, 28], 64, (3, 3, 3), 1, 1)]
    for name, xs, cout, k, stride, pad in convs:
        x = rnd(*xs).requires_grad_(True)
        w = (rnd(cout, xs[1], *k) * 0.1).requires_grad_(True)
        b = rnd(cout).requires_grad_(True)
        conv = F.conv2d if len(k) == 2 else F.conv3d
        y = conv(x, w, b, stride, pad)
        flops = 2.0 * y.numel() * xs[1] * math.prod(k)
        ms = time_ms(lambda: conv(x, w, b, stride, pad), runs)
        emit(f"{name}_fwd", xs, ms, gflops=flops / ms / 1e6)
        dy = rnd(*y.shape)
        ms = time_ms(lambda: torch.autograd.grad(y, (x, w, b), dy, retain_graph=True), runs)
        emit(f"{name}_bwd", xs, ms, gflops=2 * flops / ms / 1e6)



# --- train step -------------------------------------------------------------------------------------------------------
# The presets of src/MicroExpr.Models/Slstt.cs (SlsttPresets) and the parameter count the engine reports for each
# (SlsttModel.ParameterCount(); slstt-bench's is performance.md's 3,124,421). Letters as in docs/architecture.md:
# S image size, P patch size, C width, H heads, M MLP hidden, L LSTM layers, Hl LSTM hidden, K classes.
PRESETS = {
    "slstt-bench": dict(S=112, P=16, C=192, depth=6, H=3, M=768, L=1, Hl=192, head_hidden=0, K=5, eps=1e-5, params=3_124_421),
    "slstt-tiny": dict(S=32, P=8, C=64, depth=2, H=2, M=128, L=1, Hl=64, head_hidden=0, K=3, eps=1e-5, params=114_051),
    "slstt-b16": dict(S=224, P=16, C=768, depth=12, H=12, M=3072, L=3, Hl=512, head_hidden=256, K=3, eps=1e-6, params=92_758_787),
}
# slstt-b16: the preset fixes no T (its MaxFrames only sizes a temporal transformer's position table), so T = 8 as in the
# bench model: 32 x 8 = 256 frames of 197 tokens per step (see tools/MicroExpr.GpuCheck/TrainStepSuite.cs).
DEFAULT_MODELS = "slstt-bench:8x8,slstt-b16:32x8"
QUICK_MODELS = "slstt-tiny:2x2"
CPU_MODELS = "slstt-tiny:2x2,slstt-bench:2x2,slstt-b16:1x1"


class Block(nn.Module):
    """Pre-norm transformer block (MicroExpr.Nn.TransformerBlock): x + proj(attn(norm1(x))), then + fc2(gelu(fc1(norm2(x))))."""

    def __init__(self, C, H, M, eps):
        super().__init__()
        self.H = H
        self.norm1 = nn.LayerNorm(C, eps=eps)
        self.qkv = nn.Linear(C, 3 * C)
        self.proj = nn.Linear(C, C)
        self.norm2 = nn.LayerNorm(C, eps=eps)
        self.fc1 = nn.Linear(C, M)
        self.fc2 = nn.Linear(M, C)

    def forward(self, x):  # x [B*T, N, C]
        BT, N, C = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(BT, N, 3, self.H, C // self.H).permute(2, 0, 3, 1, 4)  # [3, B*T, H, N, D]
        q, k, v = qkv.unbind(0)
        o = F.scaled_dot_product_attention(q, k, v)  # [B*T, H, N, D], scale 1/sqrt(D)
        x = x + self.proj(o.transpose(1, 2).reshape(BT, N, C))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))  # exact (erf) GELU


class Slstt(nn.Module):
    """SlsttModel: a ViT per frame (linear patch embedding, class token, learned position embedding, pre-norm blocks,
    final LayerNorm; the class token is the frame feature) -> [B, T, C] -> LSTM (zero initial state) -> last hidden
    state of the last layer -> head (Linear, or Linear-ReLU-Linear for slstt-b16)."""

    def __init__(self, cfg):
        super().__init__()
        S, P, C = cfg["S"], cfg["P"], cfg["C"]
        self.S, self.P, self.C, self.G = S, P, C, S // P
        # The engine's PatchEmbed: patches flattened in (channel, row, column) order, then one Linear(3*P*P, C). Same
        # parameters and FLOPs as a Conv2d(3, C, P, stride=P); the Linear matches the engine op for op (permute copy + GEMM).
        self.patch_embed = nn.Linear(3 * P * P, C)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, C))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.G * self.G + 1, C))
        nn.init.trunc_normal_(self.cls_token, std=0.02, a=-0.04, b=0.04)
        nn.init.trunc_normal_(self.pos_embed, std=0.02, a=-0.04, b=0.04)
        self.blocks = nn.ModuleList(Block(C, cfg["H"], cfg["M"], cfg["eps"]) for _ in range(cfg["depth"]))
        self.norm = nn.LayerNorm(C, eps=cfg["eps"])
        for m in self.modules():  # the engine's ViT: Linear weights ~ trunc normal 0.02, biases 0
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02, a=-0.04, b=0.04)
                nn.init.zeros_(m.bias)
        self.lstm = nn.LSTM(C, cfg["Hl"], num_layers=cfg["L"], batch_first=True)  # PyTorch init, as the engine's (+-1/sqrt(Hl))
        hh, K = cfg["head_hidden"], cfg["K"]
        self.head = nn.Sequential(nn.Linear(cfg["Hl"], hh), nn.ReLU(), nn.Linear(hh, K)) if hh > 0 else nn.Linear(cfg["Hl"], K)

    def forward(self, clips):  # clips [B, T, 3, S, S] -> logits [B, K]
        B, T = clips.shape[0], clips.shape[1]
        G, P, C = self.G, self.P, self.C
        x = clips.reshape(B * T, 3, G, P, G, P).permute(0, 2, 4, 1, 3, 5).reshape(B * T, G * G, 3 * P * P)
        x = self.patch_embed(x)  # [B*T, N-1, C]
        x = torch.cat([self.cls_token.expand(B * T, -1, -1), x], dim=1) + self.pos_embed  # [B*T, N, C]
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)[:, 0].reshape(B, T, C).contiguous()  # as the engine: LayerNorm over every token, then the class token
        _, (h, _) = self.lstm(x)  # h [L, B, Hl]
        return self.head(h[-1])


def parse_models(spec):
    models = []
    for item in filter(None, (i.strip() for i in spec.split(","))):
        preset, _, bt = item.partition(":")
        b, _, t = bt.partition("x")
        if preset not in PRESETS or not b.isdigit() or not t.isdigit() or int(b) < 1 or int(t) < 1:
            raise SystemExit(f"error: --train-models: '{item}' is not preset:BxT with a preset in {sorted(PRESETS)}")
        models.append((preset, int(b), int(t)))
    if not models:
        raise SystemExit("error: --train-models: empty list")
    return models


def train_step(preset, B, T, warmup, steps, budget_s, dev, min_warmup_s):
    """Times one training step of a preset (the counterpart of MicroExpr.Models.ModelStep.Measure); returns the JSON dict."""
    cfg = PRESETS[preset]
    cuda = dev == "cuda"
    name = f"train_step_{preset}"
    out = {"name": name, "model": preset, "impl": f"pytorch {torch.__version__}", "device": dev,
           "accelerator": torch.cuda.get_device_name(0) if cuda else "CPU", "batch": B, "frames": T,
           "input": [B, T, 3, cfg["S"], cfg["S"]]}
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    torch.manual_seed(1)
    model = Slstt(cfg).to(dev)
    params = sum(p.numel() for p in model.parameters())
    out["params"] = params
    print(f"  {name}: input {out['input']}, {params:,} parameters (engine: {cfg['params']:,})", flush=True)
    assert params == cfg["params"], f"{preset}: {params} parameters, the engine has {cfg['params']}: the models differ"
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    g = torch.Generator(device=dev).manual_seed(2)
    x = torch.randn(B, T, 3, cfg["S"], cfg["S"], device=dev, generator=g)  # N(0, 1), fixed, as the engine's bench data
    y = torch.arange(B, device=dev) % cfg["K"]  # labels b mod K

    def step():
        loss = F.cross_entropy(model(x), y)  # mean over the batch
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    def sync():
        if cuda:
            torch.cuda.synchronize()

    # Warm-up: at least `warmup` steps and, when warmup > 0, at least min_warmup_s seconds (cuDNN/cuBLAS heuristics, caches).
    first, last_warm_ms, warmed = None, None, 0
    t_warm = time.perf_counter()
    while warmed < warmup or (warmup > 0 and time.perf_counter() - t_warm < min_warmup_s):
        sync()
        w0 = time.perf_counter()
        loss = step()
        sync()
        last_warm_ms = (time.perf_counter() - w0) * 1e3
        warmed += 1
        if warmed == 1:
            first = loss.item()
    planned = steps
    if budget_s > 0 and last_warm_ms is not None and last_warm_ms * steps > budget_s * 1e3:
        planned = max(min(5, steps), min(steps, int(budget_s * 1e3 / last_warm_ms)))
    ms, wall = [], []
    start, end = (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) if cuda else (None, None)
    for i in range(planned):
        sync()
        w0 = time.perf_counter()
        if cuda:
            start.record()
        loss = step()
        if cuda:
            end.record()
        sync()
        wall.append((time.perf_counter() - w0) * 1e3)
        ms.append(start.elapsed_time(end) if cuda else wall[-1])
        if warmed == 0 and i == 0:
            first = loss.item()
    last = loss.item()
    median = statistics.median(ms)
    out.update(warmup=warmed, steps=planned, median_ms=round(median, 3), min_ms=round(min(ms), 3), max_ms=round(max(ms), 3),
               clips_per_s=round(B / (median / 1e3), 3), wall_median_ms=round(statistics.median(wall), 3),
               loss_first=first, loss_last=last)
    if cuda:
        out["device_mem_mb"] = round((torch.cuda.max_memory_reserved() - base) / 2**20, 1)  # caching allocator's peak
        out["peak_alloc_mb"] = round((torch.cuda.max_memory_allocated() - base) / 2**20, 1)
    trains = math.isfinite(first) and math.isfinite(last) and first != last
    cut = f"; cut from {steps} by the time budget" if planned < steps else ""
    print(f"  time  {name:<26} median {median:.2f} ms (min {min(ms):.2f}, max {max(ms):.2f}, {planned} steps after {warmed} warm-up{cut})  "
          f"{B / (median / 1e3):.1f} clips/s" + (f"  device memory {out['device_mem_mb']:.0f} MiB (peak reserved)" if cuda else ""), flush=True)
    print(f"  check {name:<26} loss step 1 {first:.5f} -> step {warmed + planned} {last:.5f}  "
          + ("PASS (finite, changing)" if trains else "FAIL (not finite or not changing)"), flush=True)
    return out  # the model, optimizer state and data go with this frame; the caller empties the CUDA cache


def run_train_steps(models, warmup, steps, budget_s, min_warmup_s):
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"Train step (PyTorch {torch.__version__}, fp32 eager, TF32 off, AdamW default implementation; {dev}"
          + (f": {torch.cuda.get_device_name(0)})" if dev == "cuda" else ")"), flush=True)
    if any(preset == "slstt-b16" for preset, _, _ in models):
        print("  slstt-b16: the preset fixes no T (MaxFrames 16 only sizes a temporal transformer's table), so T = 8 as the bench "
              "model; the engine needs ~29 GiB at 32x8 (estimated from CPU runs), ~57 GiB at 32x16", flush=True)
    failures = 0
    for preset, B, T in models:
        try:
            out = train_step(preset, B, T, warmup, steps, budget_s, dev, min_warmup_s)
            if not (math.isfinite(out["loss_first"]) and math.isfinite(out["loss_last"]) and out["loss_first"] != out["loss_last"]):
                failures += 1
        except (RuntimeError, AssertionError) as e:  # torch.cuda.OutOfMemoryError is a RuntimeError
            failures += 1
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            print(f"  train_step_{preset} FAILED: {type(e).__name__}: {msg}", flush=True)
            out = {"name": f"train_step_{preset}", "model": preset, "impl": f"pytorch {torch.__version__}", "device": dev,
                   "batch": B, "frames": T, "error": f"{type(e).__name__}: {msg}"}
        if dev == "cuda":  # after the except block, whose traceback held the failed step's tensors
            gc.collect()
            torch.cuda.empty_cache()
        print(json.dumps(out), flush=True)
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--kernels", action="store_true", help="only the kernel comparisons")
    which.add_argument("--train-step", action="store_true", help="only the train-step comparison")
    ap.add_argument("--runs", type=int, default=25, help="timing samples per kernel (>= 20)")
    ap.add_argument("--train-models", default=None, help=f"preset:BxT list (default {DEFAULT_MODELS}; without CUDA {CPU_MODELS})")
    ap.add_argument("--steps", type=int, default=None, help="timed training steps (default 20; 2 with --quick or without CUDA)")
    ap.add_argument("--warmup", type=int, default=None, help="warm-up steps at least (default 3; 1 with --quick or without CUDA)")
    ap.add_argument("--budget-s", type=float, default=150.0, help="time fewer steps (>= 5) when they would take longer (0: off)")
    ap.add_argument("--quick", action="store_true", help=f"train step on {QUICK_MODELS} only, 1 warm-up, 2 steps")
    a = ap.parse_args()
    cuda = torch.cuda.is_available()
    small = a.quick or not cuda
    models = parse_models(a.train_models or (QUICK_MODELS if a.quick else DEFAULT_MODELS if cuda else CPU_MODELS))
    failures = 0
    if not a.train_step:
        if cuda:
            run_kernels(max(20, a.runs))
        else:
            print("note: no CUDA device: the kernel comparisons need one and are skipped", flush=True)
    if not a.kernels:
        if not cuda:
            print("note: no CUDA device: the train step runs on the CPU on small batches, as a syntax, shape and "
                  "parameter-count check; these timings are not the GPU comparison", flush=True)
        failures += run_train_steps(models, a.warmup if a.warmup is not None else (1 if small else 3),
                                    max(1, a.steps if a.steps is not None else (2 if small else 20)), max(0.0, a.budget_s),
                                    0.0 if small else 2.0)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
