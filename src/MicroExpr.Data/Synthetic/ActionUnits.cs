using System.Globalization;

namespace MicroExpr.Data.Synthetic;

/// <summary>One Gaussian-windowed displacement: content near (X, Y) moves by (Dx, Dy)·exp(−r²/2σ²). Canonical face pixels.</summary>
public readonly record struct AuBlob(double X, double Y, double Sigma, double Dx, double Dy);

/// <summary>A class of the synthetic set: its name (the label), the CASME II emotion words that express it and their AU codings.</summary>
public sealed record SyntheticClass(int Index, string Name, IReadOnlyList<string> Emotions);

/// <summary>
/// Classes, emotions and action units of the synthetic set.
/// <para>
/// Class → emotion → action-unit codings. A clip's coding is one <b>core</b> coding of its emotion (drawn uniformly),
/// plus each of the emotion's <b>extra</b> AUs with its own probability (L/R = the subject's left/right side, i.e. image
/// right/left):
/// <list type="bullet">
/// <item>happiness: core <c>12</c>, <c>6+12</c>, <c>R12</c>, <c>L12</c> — lip corners out and up (AU12), cheeks up (AU6);
/// extras AU7 (0.25), AU17 (0.15).</item>
/// <item>disgust: core <c>4+9</c>, <c>4+10</c>, <c>4+L10</c>, <c>4</c> — brows down and together (AU4), nose wrinkle (AU9),
/// upper lip up (AU10); extras AU7 (0.3), AU17 (0.2).</item>
/// <item>repression: core <c>15</c>, <c>15+17</c>, <c>R15</c>, <c>17</c> — lip corners down (AU15), chin up (AU17);
/// extras AU4 (0.25), AU24 (0.25), AU7 (0.15).</item>
/// <item>surprise: core <c>1+2</c>, <c>1+2+26</c>, <c>2+26</c> — inner and outer brows up (AU1+2), jaw drop (AU26);
/// extras AU7 (0.15), AU12 (0.1).</item>
/// <item>others: core <c>7</c>, <c>L7</c>, <c>24</c>, <c>7+24</c> — lids tightened (AU7), lips pressed (AU24); extras AU4
/// (0.2), AU17 (0.2), AU10 (0.1).</item>
/// </list>
/// So, as in CASME II and SAMM, AU sets vary within an emotion (4 core codings × the extras: up to 16 sets per emotion)
/// and overlap across emotions (AU7 occurs in every emotion, AU17 in four, AU4 in three, AU12 in happiness and surprise),
/// while each emotion's core AUs keep it learnable from the motion. An AU-set prototype is therefore not a sub-class
/// label: whole sets are shared by emotions ("4+7" by disgust and others, "7+17" by repression and others, "4+17" by
/// disgust and repression), sets of different MEGC classes share AUs (AU7 and AU17 in positive and negative clips, AU7
/// in surprise ones too, AU12 in positive and surprise ones), and an attribute embedding built from the AUs places them
/// by what they share, which the labels alone do not say. No extra opposes a core AU's motion in its region (no AU4
/// with AU1, no AU17 with AU26): the blobs' displacements add, so opposing AUs would cancel rather than both show (an
/// early draft let surprise add AU4: in 1+2+4 the brows barely moved and Farneback's flow no longer matched the field). Rejected: extra AUs drawn uniformly from all modelled AUs (the class
/// would then hinge on the core alone and the extras would be noise, unlike real codings, where co-occurrence follows
/// the emotion); identical whole sets shared across the 3 MEGC classes (sets that decide nothing about the class make
/// the demo's figure hinge on how many clips draw them).
/// The extras are drawn from a stream of their own (<c>SynthRandom.Derive(seed, "extra-aus", subject, clip)</c>), so
/// the labels, core codings and every other draw are the same as before the extras existed.
/// 3 classes (MEGC2019 composite): negative = disgust or repression (half each), positive = happiness, surprise = surprise;
/// the coding file holds the emotion words, which the MEGC mapping turns back into these classes.
/// 5 classes: happiness, disgust, repression, surprise, others (the CASME II 5-class protocol).
/// </para>
/// <para>
/// Each AU is a few Gaussian blobs placed on the subject's own landmarks (σ ≈ 0.45–1 eye half-widths), so the motion is
/// local. A clip's field is scaled so that its peak displacement at the apex equals the clip's amplitude
/// (0.8–1.6 px at 128 px by default), whichever AUs it combines.
/// </para>
/// </summary>
public static class ActionUnits
{
    public static readonly IReadOnlyList<SyntheticClass> ThreeClasses =
    [
        new(0, "negative", ["disgust", "repression"]),
        new(1, "positive", ["happiness"]),
        new(2, "surprise", ["surprise"]),
    ];

    public static readonly IReadOnlyList<SyntheticClass> FiveClasses =
    [
        new(0, "happiness", ["happiness"]),
        new(1, "disgust", ["disgust"]),
        new(2, "repression", ["repression"]),
        new(3, "surprise", ["surprise"]),
        new(4, "others", ["others"]),
    ];

    /// <summary>The core AU codings of each emotion word (one is drawn per clip).</summary>
    public static readonly IReadOnlyDictionary<string, IReadOnlyList<string>> Codings = new Dictionary<string, IReadOnlyList<string>>
    {
        ["happiness"] = ["12", "6+12", "R12", "L12"],
        ["disgust"] = ["4+9", "4+10", "4+L10", "4"],
        ["repression"] = ["15", "15+17", "R15", "17"],
        ["surprise"] = ["1+2", "1+2+26", "2+26"],
        ["others"] = ["7", "L7", "24", "7+24"],
    };

    /// <summary>The extra AUs of each emotion word with the probability that a clip adds each (bilateral).</summary>
    public static readonly IReadOnlyDictionary<string, IReadOnlyList<(int Au, double P)>> Extras = new Dictionary<string, IReadOnlyList<(int, double)>>
    {
        ["happiness"] = [(7, 0.25), (17, 0.15)],
        ["disgust"] = [(7, 0.3), (17, 0.2)],
        ["repression"] = [(4, 0.25), (24, 0.25), (7, 0.15)],
        ["surprise"] = [(7, 0.15), (12, 0.1)],
        ["others"] = [(4, 0.2), (17, 0.2), (10, 0.1)],
    };

    /// <summary>
    /// A clip's coding: the core coding plus the extras drawn from <paramref name="extras"/>, an extra AU already in the
    /// core (on either side) skipped; units sorted by AU number as CASME II writes them (<c>4+7+L10</c>).
    /// </summary>
    public static string Compose(string core, string emotion, SynthRandom extras)
    {
        var units = core.Split('+').Select(u => (Number: int.Parse(u.TrimStart('L', 'R'), NumberStyles.None, CultureInfo.InvariantCulture), Text: u)).ToList();
        foreach (var (au, p) in Extras[emotion])
            if (extras.Chance(p) && units.All(u => u.Number != au)) units.Add((au, au.ToString(CultureInfo.InvariantCulture)));
        return string.Join("+", units.OrderBy(u => u.Number).Select(u => u.Text));
    }

    public static IReadOnlyList<SyntheticClass> ClassesFor(int classes) => classes switch
    {
        3 => ThreeClasses,
        5 => FiveClasses,
        _ => throw new ArgumentOutOfRangeException(nameof(classes), classes, "classes must be 3 or 5"),
    };

    /// <summary>
    /// The displacement blobs of an AU coding such as <c>4+L10</c> on a face, before amplitude scaling (unit-ish vectors).
    /// </summary>
    public static IReadOnlyList<AuBlob> Blobs(SyntheticFace face, string coding)
    {
        var blobs = new List<AuBlob>();
        foreach (var raw in coding.Split('+'))
        {
            string token = raw.Trim();
            int[] sides = [0, 1];
            // FACS L/R are the subject's sides: the subject's left appears on the image's right (side 1).
            if (token.StartsWith('L')) { sides = [1]; token = token[1..]; }
            else if (token.StartsWith('R')) { sides = [0]; token = token[1..]; }
            int au = int.Parse(token, NumberStyles.None, CultureInfo.InvariantCulture);
            foreach (int s in sides) AddAu(blobs, face, au, s);
        }
        return blobs;
    }

    static void AddAu(List<AuBlob> b, SyntheticFace f, int au, int side)
    {
        double ew = f.EyeHalfWidth, eh = f.EyeHalfHeight;
        double outward = side == 0 ? -1 : 1;
        var eye = f.Eyes[side];
        var inner = f.BrowInner[side];
        var outer = f.BrowOuter[side];
        var corner = f.MouthCorners[side];
        switch (au)
        {
            case 1: // inner brow raiser
                b.Add(new(inner.X - 0.15 * ew * outward, inner.Y - 0.1 * ew, 0.55 * ew, 0, -1));
                break;
            case 2: // outer brow raiser
                b.Add(new(outer.X + 0.1 * ew * outward, outer.Y - 0.1 * ew, 0.55 * ew, 0, -1));
                break;
            case 4: // brow lowerer: brows down and drawn together
                b.Add(new(inner.X + 0.25 * ew * outward, inner.Y, 0.6 * ew, -0.5 * outward, 0.85));
                break;
            case 6: // cheek raiser
                b.Add(new(eye.X + 0.2 * ew * outward, eye.Y + eh + 0.9 * ew, 0.75 * ew, 0, -0.8));
                break;
            case 7: // lid tightener: lower lid up, upper lid slightly down
                b.Add(new(eye.X, eye.Y + 1.1 * eh, 0.45 * ew, 0, -0.9));
                b.Add(new(eye.X, eye.Y - 1.3 * eh, 0.4 * ew, 0, 0.35));
                break;
            case 9: // nose wrinkler: sides of the nose and the root pulled up
                b.Add(new(f.NoseTip.X + outward * f.NoseHalfWidth * 0.8, f.NoseTip.Y - 0.5 * ew, 0.5 * ew, 0.15 * outward, -1));
                if (side == 0) b.Add(new(f.NoseRoot.X, (f.NoseRoot.Y + f.NoseTip.Y) / 2, 0.55 * ew, 0, -0.6));
                break;
            case 10: // upper lip raiser
                b.Add(new(f.UpperLip.X + outward * 0.35 * f.MouthHalfWidth, f.UpperLip.Y, 0.5 * ew, 0, -1));
                break;
            case 12: // lip corner puller: out and up
                b.Add(new(corner.X, corner.Y, 0.55 * ew, 0.7 * outward, -0.75));
                break;
            case 15: // lip corner depressor
                b.Add(new(corner.X, corner.Y + 0.15 * ew, 0.55 * ew, 0.1 * outward, 1));
                break;
            case 17: // chin raiser (one blob, added once)
                if (side == 0) b.Add(new(f.LowerLip.X, f.LowerLip.Y + 0.6 * ew, 0.8 * ew, 0, -1));
                break;
            case 24: // lip presser: lips pressed together
                if (side == 0)
                {
                    b.Add(new(f.UpperLip.X, f.UpperLip.Y, 0.55 * ew, 0, 0.8));
                    b.Add(new(f.LowerLip.X, f.LowerLip.Y, 0.55 * ew, 0, -0.8));
                }
                break;
            case 26: // jaw drop: lower lip and chin down
                if (side == 0)
                {
                    b.Add(new(f.LowerLip.X, f.LowerLip.Y + 0.3 * ew, 0.8 * ew, 0, 1));
                    b.Add(new(f.Chin.X, f.Chin.Y - 0.3 * ew, 0.95 * ew, 0, 0.8));
                }
                break;
            default:
                throw new ArgumentException($"action unit {au} is not modelled by the synthetic generator");
        }
    }

    /// <summary>Evaluates the blobs' displacement at (x, y).</summary>
    public static (double Dx, double Dy) Evaluate(IReadOnlyList<AuBlob> blobs, double x, double y)
    {
        double dx = 0, dy = 0;
        foreach (var bl in blobs)
        {
            double rx = x - bl.X, ry = y - bl.Y;
            double r2 = (rx * rx + ry * ry) / (2 * bl.Sigma * bl.Sigma);
            if (r2 > 12) continue;
            double w = Math.Exp(-r2);
            dx += w * bl.Dx;
            dy += w * bl.Dy;
        }
        return (dx, dy);
    }
}
