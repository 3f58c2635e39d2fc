using System.Runtime.CompilerServices;

namespace MicroExpr.Kernels;

/// <summary>
/// Writes packed panels of a GEMM's op(B) for <see cref="GemmSimd.TryRunPackedB{TPack}"/>: rows p0 .. p0+kc (the K slice),
/// columns j0 .. j0+nc, as NR = 32-column strips (dst[s·kc·32 + (p − p0)·32 + j]), columns past nc zero. An implicit GEMM
/// (a convolution's im2col) packs straight from its source instead of materialising op(B) first.
/// </summary>
internal unsafe interface IPackB
{
    void Pack(float* dst, int p0, int kc, int j0, int nc);
}

public static unsafe partial class GemmSimd
{
    /// <summary>Strip width the packers of <see cref="TryRunPackedB{TPack}"/> write (the Vector512 kernel's NR).</summary>
    internal const int PackedBStrip = Nr512;

    /// <summary>
    /// C[M, N] = A[M, K]·op(B) (+ beta·C) on the calling thread, A row-major (row stride lda) read in place, op(B) packed
    /// by <paramref name="packer"/> one [kc, nc] panel at a time (K slices as in the packed driver; N in blocks of at most
    /// <paramref name="ncMax"/> columns): the packed driver of <see cref="Run"/> without its own B packing pass. Only on
    /// the Vector512 path (6×32 kernel); returns false, doing nothing, elsewhere (the caller then materialises op(B)).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static bool TryRunPackedB<TPack>(ref TPack packer, float* c, int ldc, float* a, int lda, int m, int n, int k, float beta,
        int ncMax) where TPack : struct, IPackB
    {
        if (Resolve() != Path.Avx512) return false;
        if (m <= 0 || n <= 0) return true;
        const int mr = Mr512, nr = Nr512;
        var bufs = t_buffers;
        int kBlocks = (k + Kc - 1) / Kc;
        int kcMax = Math.Min(k, RoundUp((k + kBlocks - 1) / kBlocks, 8));
        int nc0 = Math.Max(nr, Math.Min(RoundUp(n, nr), ncMax / nr * nr));
        float* pB = bufs.EnsureB((long)nc0 * kcMax + 16);
        float* pA = bufs.EnsureA((long)mr * kcMax + 16);
        float* tile = stackalloc float[16 * 64 + 16];
        tile = (float*)(((nint)tile + 63) & ~(nint)63);
        int full = m / mr * mr;
        for (int jc = 0; jc < n; jc += nc0)
        {
            int nc = Math.Min(nc0, n - jc);
            for (int pc = 0; pc < k; pc += kcMax)
            {
                int kc = Math.Min(kcMax, k - pc);
                float betaEff = pc == 0 ? beta : 1f;
                packer.Pack(pB, pc, kc, jc, nc);
                if (full < m) PackA(pA, a, lda, false, full, m - full, pc, kc, mr);
                for (int jr = 0; jr < nc; jr += nr)
                {
                    int nrv = Math.Min(nr, nc - jr);
                    float* pb = pB + (long)jr * kc;
                    for (int ir = 0; ir < m; ir += mr)
                    {
                        int mrv = Math.Min(mr, m - ir);
                        float* cij = c + (long)ir * ldc + jc + jr;
                        if (mrv == mr)
                        {
                            float* ar = a + (long)ir * lda + pc;
                            if (nrv == nr) Kernel512RowA(kc, ar, lda, pb, nr, cij, ldc, 1f, betaEff);
                            else
                            {
                                Kernel512RowA(kc, ar, lda, pb, nr, tile, nr, 1f, 0f);
                                WriteBack(cij, ldc, tile, nr, mrv, nrv, betaEff);
                            }
                        }
                        else
                        {
                            Kernel512(kc, pA, mr, pb, nr, tile, nr, 1f, 0f);
                            WriteBack(cij, ldc, tile, nr, mrv, nrv, betaEff);
                        }
                    }
                }
            }
        }
        return true;
    }
}
