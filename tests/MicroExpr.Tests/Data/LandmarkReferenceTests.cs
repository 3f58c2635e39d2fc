using System.Globalization;
using MicroExpr.Data.Faces;
using NUnit.Framework;

namespace MicroExpr.Tests.Data;

/// <summary>
/// ShapePredictor against dlib 19.24 itself, on the fixed inputs of <see cref="LandmarkCases"/>: every point of every case
/// within 0.01 px of the value tools/dlib-landmarks-ref printed (committed in Data/Landmarks/dlib-68-reference.txt;
/// regenerate with tools/dlib-landmarks-ref/regenerate.sh). Needs Debian's libdlib-data (the model) and opencv-doc (the
/// real image): in CI (CI=true) a missing one fails the test, elsewhere the test is reported as ignored with the reason.
/// </summary>
[TestFixture]
public class LandmarkReferenceTests
{
    internal static readonly Lazy<ShapePredictor> Model = new(() => ShapePredictor.Load(ShapePredictor.DebianModelPath));

    internal static void RequireInputs(params string[] paths)
    {
        foreach (var p in paths)
        {
            if (File.Exists(p)) continue;
            string msg = $"{p} is missing (Debian packages libdlib-data and opencv-doc; .ci/run installs them)";
            if (string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase)) Assert.Fail(msg);
            Assert.Ignore(msg);
        }
    }

    static string ReferencePath => Path.Combine(TestContext.CurrentContext.TestDirectory, "Data", "Landmarks", "dlib-68-reference.txt");

    [Test]
    public void CascadeMatchesDlibOnEveryPointOfEveryCase()
    {
        RequireInputs(ShapePredictor.DebianModelPath, LandmarkCases.Messi);
        var reference = LandmarkCases.ReadReference(ReferencePath);
        var cases = LandmarkCases.All();
        Assert.That(reference.Keys, Is.EquivalentTo(cases.Select(c => c.Name)), "reference cases vs generated cases");
        var model = Model.Value;
        Assert.That(model.Parts, Is.EqualTo(68));
        double worst = 0;
        foreach (var c in cases)
        {
            var got = model.Predict(c.Grey, c.Width, c.Height, c.Box);
            var want = reference[c.Name];
            Assert.That(got, Has.Length.EqualTo(want.Length), c.Name);
            for (int i = 0; i < want.Length; i++)
            {
                double e = Math.Max(Math.Abs(got[i].X - want[i].X), Math.Abs(got[i].Y - want[i].Y));
                worst = Math.Max(worst, e);
                Assert.That(e, Is.LessThanOrEqualTo(0.01),
                    FormattableString.Invariant($"{c.Name} point {i}: C# ({got[i].X:F4}, {got[i].Y:F4}), dlib ({want[i].X:F4}, {want[i].Y:F4})"));
            }
        }
        TestContext.Out.WriteLine(FormattableString.Invariant($"{cases.Count} cases x 68 points, largest difference {worst:E2} px"));
    }

    /// <summary>
    /// Writes the inputs for the C++ reference: one PGM per case and cases.txt ("name file left top right bottom") into
    /// $MICROEXPR_LANDMARK_CASES. Run by tools/dlib-landmarks-ref/regenerate.sh, not by the suite.
    /// </summary>
    [Test, Explicit("writes the reference inputs; run by tools/dlib-landmarks-ref/regenerate.sh")]
    public void WriteReferenceInputs()
    {
        string? dir = Environment.GetEnvironmentVariable("MICROEXPR_LANDMARK_CASES");
        if (string.IsNullOrEmpty(dir)) Assert.Fail("set MICROEXPR_LANDMARK_CASES to the folder the inputs go to");
        Directory.CreateDirectory(dir!);
        var lines = new List<string>();
        foreach (var c in LandmarkCases.All())
        {
            string pgm = Path.Combine(dir!, c.Name + ".pgm");
            Pgm.Write(pgm, c.Grey, c.Width, c.Height);
            lines.Add(string.Create(CultureInfo.InvariantCulture, $"{c.Name} {pgm} {c.Box.Left} {c.Box.Top} {c.Box.Right} {c.Box.Bottom}"));
        }
        File.WriteAllLines(Path.Combine(dir!, "cases.txt"), lines);
    }
}
