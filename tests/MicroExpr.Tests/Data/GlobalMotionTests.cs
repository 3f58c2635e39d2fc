using MicroExpr.Data;
using MicroExpr.Data.Motion;

namespace MicroExpr.Tests.Data;

public class GlobalMotionTests
{
    [Test]
    public void AnAffineFieldIsRemovedAndALocalMotionSurvives()
    {
        int w = 40, h = 40;
        var u = new float[w * h];
        var v = new float[w * h];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                // head: translation (0.7, -0.4) plus a small rotation; expression: a 1 px upward blob at (30, 28)
                double rx = (x - w / 2.0) / w, ry = (y - h / 2.0) / h;
                u[y * w + x] = (float)(0.7 - 0.05 * ry);
                v[y * w + x] = (float)(-0.4 + 0.05 * rx);
                double d2 = (x - 30) * (x - 30) + (y - 28) * (y - 28);
                v[y * w + x] += (float)(-1.0 * Math.Exp(-d2 / (2 * 2.0 * 2.0)));
            }
        GlobalMotion.RemoveAffine(u, v, w, h);
        Assert.That(Math.Abs(u[5 * w + 5]), Is.LessThan(0.02), "far from the blob, u is ~0");
        Assert.That(Math.Abs(v[5 * w + 5]), Is.LessThan(0.02), "far from the blob, v is ~0");
        Assert.That(v[28 * w + 30], Is.LessThan(-0.9), "the blob keeps its motion");
    }

    [Test]
    public void NewSettingsChangeTheCacheHash()
    {
        var a = new PreprocessSettings(Size: 32);
        Assert.That(a with { RemoveGlobalMotion = true }, Is.Not.EqualTo(a));
        Assert.That((a with { RemoveGlobalMotion = true }).Hash, Is.Not.EqualTo(a.Hash));
        Assert.That((a with { FlowSize = 128 }).Hash, Is.Not.EqualTo(a.Hash));
        Assert.That((a with { FlowSize = 16 }).Hash, Is.EqualTo(a.Hash), "a flow size below S means 'at S'");
        Assert.That((a with { FlowScale = 0.25 }).Hash, Is.Not.EqualTo(a.Hash));
    }

    [Test]
    public void FixedFlowScaleKeepsEqualMotionsEqualAcrossClips()
    {
        int n = 4;
        (float[], float[]) Field(float peak)
        {
            var u = new float[n * n];
            var v = new float[n * n];
            u[5] = 0.5f;        // the same 0.5 px motion in both clips
            v[10] = peak;       // plus a blink-sized motion in one of them
            return (u, v);
        }
        var quiet = MotionEncoder.Encode([Field(0)], n, n, MotionEncoding.Uvs, 0.25f);
        var blink = MotionEncoder.Encode([Field(5)], n, n, MotionEncoding.Uvs, 0.25f);
        Assert.That(quiet[5], Is.EqualTo(2f));
        Assert.That(blink[5], Is.EqualTo(2f));
        Assert.That(blink[n * n + 10], Is.EqualTo(4f), "clipped at 4");
        var perClip = MotionEncoder.Encode([Field(5)], n, n, MotionEncoding.Uvs);
        Assert.That(perClip[5], Is.EqualTo(0.1f).Within(1e-6), "per-clip maxima: the blink shrinks the rest");
    }
}
