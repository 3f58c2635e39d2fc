namespace MicroExpr.Data.Motion;

/// <summary>
/// Removes the global (head) motion from a flow field: fits an affine field u = a0 + a1·x + a2·y,
/// v = b0 + b1·x + b2·y by least squares, refits on the 80 % of pixels with the smallest residual (so local
/// facial motion — the micro-expression — does not pull the fit), and subtracts it. Head drift and small
/// rotations of about a pixel are as large as a micro-expression; without this the flow is dominated by them.
/// </summary>
public static class GlobalMotion
{
    public static void RemoveAffine(float[] u, float[] v, int width, int height)
    {
        int n = width * height;
        var use = new bool[n];
        Array.Fill(use, true);
        double[] cu = [0, 0, 0], cv = [0, 0, 0];
        for (int pass = 0; pass < 2; pass++)
        {
            cu = Fit(u, use, width, height);
            cv = Fit(v, use, width, height);
            if (pass == 1) break;
            var residual = new double[n];
            for (int i = 0; i < n; i++)
            {
                double x = (double)(i % width) / width - 0.5, y = (double)(i / width) / height - 0.5;
                double du = u[i] - (cu[0] + cu[1] * x + cu[2] * y), dv = v[i] - (cv[0] + cv[1] * x + cv[2] * y);
                residual[i] = du * du + dv * dv;
            }
            var sorted = (double[])residual.Clone();
            Array.Sort(sorted);
            double cut = sorted[(int)(0.8 * (n - 1))];
            for (int i = 0; i < n; i++) use[i] = residual[i] <= cut;
        }
        for (int i = 0; i < n; i++)
        {
            double x = (double)(i % width) / width - 0.5, y = (double)(i / width) / height - 0.5;
            u[i] -= (float)(cu[0] + cu[1] * x + cu[2] * y);
            v[i] -= (float)(cv[0] + cv[1] * x + cv[2] * y);
        }
    }

    /// <summary>Least-squares [c0, c1, c2] of f ≈ c0 + c1·x + c2·y over the pixels in use (x, y centred in [-0.5, 0.5)).</summary>
    private static double[] Fit(float[] f, bool[] use, int width, int height)
    {
        // Normal equations: 3×3 system A c = b.
        double s1 = 0, sx = 0, sy = 0, sxx = 0, sxy = 0, syy = 0, b0 = 0, bx = 0, by = 0;
        for (int i = 0; i < f.Length; i++)
        {
            if (!use[i]) continue;
            double x = (double)(i % width) / width - 0.5, y = (double)(i / width) / height - 0.5, z = f[i];
            s1++; sx += x; sy += y; sxx += x * x; sxy += x * y; syy += y * y;
            b0 += z; bx += x * z; by += y * z;
        }
        double[,] a = { { s1, sx, sy }, { sx, sxx, sxy }, { sy, sxy, syy } };
        double[] b = [b0, bx, by];
        // Gaussian elimination with partial pivoting (3×3).
        for (int col = 0; col < 3; col++)
        {
            int pivot = col;
            for (int r = col + 1; r < 3; r++) if (Math.Abs(a[r, col]) > Math.Abs(a[pivot, col])) pivot = r;
            if (Math.Abs(a[pivot, col]) < 1e-12) return [s1 > 0 ? b0 / s1 : 0, 0, 0];
            for (int k = 0; k < 3; k++) (a[col, k], a[pivot, k]) = (a[pivot, k], a[col, k]);
            (b[col], b[pivot]) = (b[pivot], b[col]);
            for (int r = col + 1; r < 3; r++)
            {
                double m = a[r, col] / a[col, col];
                for (int k = col; k < 3; k++) a[r, k] -= m * a[col, k];
                b[r] -= m * b[col];
            }
        }
        var c = new double[3];
        for (int r = 2; r >= 0; r--)
        {
            double s = b[r];
            for (int k = r + 1; k < 3; k++) s -= a[r, k] * c[k];
            c[r] = s / a[r, r];
        }
        return c;
    }
}
