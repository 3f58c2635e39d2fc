namespace MicroExpr.Data.Motion;

/// <summary>
/// What a horizontal flip does to channel 0 of a clip's motion frames beyond mirroring them, so that the flipped clip is
/// the motion of the mirrored face (the flip augmentation, <c>train --flip</c>).
/// </summary>
public enum FlowFlip
{
    /// <summary>Mirror only: images (RGB, grey, dynamic image), HSV flow images, and precomputed images whose channels are not declared.</summary>
    Mirror,
    /// <summary>Channel 0 is the signed horizontal flow u (<see cref="MotionEncoding.Uvs"/>): u → −u.</summary>
    NegateU,
    /// <summary>Channel 0 is u min–max stretched to [0, 1] per image (<see cref="MotionEncoding.UvsStretched"/>): u → 1 − u,
    /// which is exactly the stretch of −u (the image's min and max of u swap roles).</summary>
    ComplementU,
}
