using MicroExpr.Data.Motion;
using MicroExpr.Tensors;

namespace MicroExpr.Training;

/// <summary>Clip augmentation applied identically to every frame of a clip: horizontal flip, pad-and-crop.</summary>
public static class Augment
{
    /// <summary>Writes the augmented clip [T, C, S, S] into dst; a flip mirrors every channel and maps channel 0 by <paramref name="rule"/>.</summary>
    public static void Apply(ReadOnlySpan<float> src, Span<float> dst, int frames, int channels, int size, bool flip, int dx, int dy, FlowFlip rule)
    {
        for (int t = 0; t < frames; t++)
            for (int c = 0; c < channels; c++)
            {
                int plane = (t * channels + c) * size * size;
                // v → sign·v + shift: −u for signed u, 1 − u for u stretched per image, v otherwise.
                var u = flip && c == 0 ? rule : FlowFlip.Mirror;
                float sign = u == FlowFlip.Mirror ? 1f : -1f, shift = u == FlowFlip.ComplementU ? 1f : 0f;
                for (int y = 0; y < size; y++)
                {
                    int sy = Math.Clamp(y + dy, 0, size - 1);
                    for (int x = 0; x < size; x++)
                    {
                        int sx = Math.Clamp((flip ? size - 1 - x : x) + dx, 0, size - 1);
                        dst[plane + y * size + x] = sign * src[plane + sy * size + sx] + shift;
                    }
                }
            }
    }

    /// <summary>Draws this clip's augmentation from the generator.</summary>
    public static (bool Flip, int Dx, int Dy) Draw(Rng rng, bool flip, int cropPad) =>
        (flip && rng.NextDouble() < 0.5, cropPad > 0 ? rng.NextInt(2 * cropPad + 1) - cropPad : 0, cropPad > 0 ? rng.NextInt(2 * cropPad + 1) - cropPad : 0);
}
