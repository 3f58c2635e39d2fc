"""Generates kernels/MicroExpr.Kernels/Gemm/Gemm.Simd.MicroKernels.g.cs, the register-tiled GEMM micro-kernels.

Usage: python3 tools/gen_gemm_kernels.py MR512 NV512 UNROLL > kernels/MicroExpr.Kernels/Gemm/Gemm.Simd.MicroKernels.g.cs
  MR512: rows of the AVX-512 tile; NV512: Vector512 per row (NR = 16*NV512); UNROLL: k-loop unroll of the packed kernels.
Current choice: 6 2 1 (6x32 tile, 12 zmm accumulators).
"""
import sys
def kernel(name, mr, nv, vec, w, fma, unroll):
    # nv vectors per row, each w floats; NR = nv*w
    nr = nv*w
    L = []
    L.append(f"    /// <summary>{mr}×{nr} micro-kernel ({vec}): C[0..{mr},0..{nr}] = alpha·Σ_p Ap[p,r]·Bp[p,j] (+ beta·C). B row p at pb + p·" + ("bStep (packed strip: bStep = NR; B in place: bStep = ldb)" if vec == "Vector512" else f"{nr} (a packed strip)") + f"; Ap holds the {mr} values of A for step p at pa + p·" + ("aStep (a packed strip: aStep = MR; transposed A in place: aStep = lda)" if vec == "Vector512" else f"{mr} (a packed strip)") + ".</summary>")
    L.append(f"    [MethodImpl(MethodImplOptions.AggressiveOptimization)]")
    astep = "aStep" if vec == "Vector512" else str(mr)
    if vec == "Vector512":
        L.append(f"    static void {name}(int kc, float* pa, nint aStep, float* pb, nint bStep, float* c, nint ldc, float alpha, float beta)")
    else:
        L.append(f"    static void {name}(int kc, float* pa, float* pb, float* c, nint ldc, float alpha, float beta)")
    L.append("    {")
    if vec == "Vector512":
        L.append(f"        for (int r = 0; r < {mr}; r++) {{ Sse.Prefetch0(c + r * ldc); Sse.Prefetch0(c + r * ldc + {nr-1}); }}")
    for r in range(mr):
        L.append("        " + " ".join(f"var c{r}_{v} = {vec}<float>.Zero;" for v in range(nv)))
    def step(off):
        s=[]
        for v in range(nv):
            s.append(f"            var b{v} = {vec}.Load(pb + {off*nr + v*w});")
        for r in range(mr):
            s.append(f"            var a{r} = {vec}.Create(pa[{off*mr + r}]);")
            for v in range(nv):
                s.append(f"            c{r}_{v} = {fma}(a{r}, b{v}, c{r}_{v});")
        return s
    if unroll>1:
        L.append(f"        int p = 0;")
        L.append(f"        for (; p + {unroll} <= kc; p += {unroll})")
        L.append("        {")
        for u in range(unroll):
            L += step(u)
        L.append(f"            pa += {mr*unroll}; pb += {nr*unroll};")
        L.append("        }")
        L.append(f"        for (; p < kc; p++)")
    else:
        L.append(f"        for (int p = 0; p < kc; p++)")
    L.append("        {")
    L += step(0)
    L.append(f"            pa += {astep}; pb += {'bStep' if vec == 'Vector512' else nr};")
    L.append("        }")
    L.append(f"        var va = {vec}.Create(alpha);")
    L.append("        if (beta == 0f)")
    L.append("        {")
    for r in range(mr):
        for v in range(nv):
            L.append(f"            {vec}.Store(c{r}_{v} * va, c + {r} * ldc + {v*w});")
    L.append("        }")
    L.append("        else")
    L.append("        {")
    L.append(f"            var vb = {vec}.Create(beta);")
    for r in range(mr):
        for v in range(nv):
            L.append(f"            {vec}.Store({fma}({vec}.Load(c + {r} * ldc + {v*w}), vb, c{r}_{v} * va), c + {r} * ldc + {v*w});")
    L.append("        }")
    L.append("    }")
    return "\n".join(L)

def kernelA(name, mr, nv, vec, w, fma):
    nr = nv*w
    L = []
    L.append(f"    /// <summary>{mr}×{nr} micro-kernel ({vec}) reading A unpacked: row r of the strip at a + r·lda, contiguous in k; B row p at pb + p·bStep (packed strip: bStep = NR; B in place: bStep = ldb).</summary>")
    L.append(f"    [MethodImpl(MethodImplOptions.AggressiveOptimization)]")
    L.append(f"    static void {name}(int kc, float* a, nint lda, float* pb, nint bStep, float* c, nint ldc, float alpha, float beta)")
    L.append("    {")
    L.append(f"        for (int r = 0; r < {mr}; r++) {{ Sse.Prefetch0(c + r * ldc); Sse.Prefetch0(c + r * ldc + {nr-1}); }}")
    for r in range(mr):
        L.append(f"        float* a{r}p = a + {r} * lda;")
    for r in range(mr):
        L.append("        " + " ".join(f"var c{r}_{v} = {vec}<float>.Zero;" for v in range(nv)))
    L.append(f"        for (int p = 0; p < kc; p++)")
    L.append("        {")
    for v in range(nv):
        L.append(f"            var b{v} = {vec}.Load(pb + {v*w});")
    for r in range(mr):
        L.append(f"            var a{r} = {vec}.Create(a{r}p[p]);")
        for v in range(nv):
            L.append(f"            c{r}_{v} = {fma}(a{r}, b{v}, c{r}_{v});")
    L.append(f"            pb += bStep;")
    L.append("        }")
    L.append(f"        var va = {vec}.Create(alpha);")
    L.append("        if (beta == 0f)")
    L.append("        {")
    for r in range(mr):
        for v in range(nv):
            L.append(f"            {vec}.Store(c{r}_{v} * va, c + {r} * ldc + {v*w});")
    L.append("        }")
    L.append("        else")
    L.append("        {")
    L.append(f"            var vb = {vec}.Create(beta);")
    for r in range(mr):
        for v in range(nv):
            L.append(f"            {vec}.Store({fma}({vec}.Load(c + {r} * ldc + {v*w}), vb, c{r}_{v} * va), c + {r} * ldc + {v*w});")
    L.append("        }")
    L.append("    }")
    return "\n".join(L)

mr512=int(sys.argv[1]); nv512=int(sys.argv[2]); un=int(sys.argv[3])
print(f"// <auto-generated> by tools/gen_gemm_kernels.py {mr512} {nv512} {un}; edit the generator, not this file. </auto-generated>")
print("using System.Runtime.CompilerServices;\nusing System.Runtime.Intrinsics;\nusing System.Runtime.Intrinsics.X86;\n\nnamespace MicroExpr.Kernels;\n\npublic static unsafe partial class GemmSimd\n{")
print(f"    const int Mr512 = {mr512}, Nr512 = {nv512*16};")
print(f"    const int Mr256 = 6, Nr256 = 16;")
print(kernel("Kernel512", mr512, nv512, "Vector512", 16, "Avx512F.FusedMultiplyAdd", un))
print()
print(kernelA("Kernel512RowA", mr512, nv512, "Vector512", 16, "Avx512F.FusedMultiplyAdd"))
print()
print(kernel("Kernel256", 6, 2, "Vector256", 8, "Fma.MultiplyAdd", un))
print("}")
