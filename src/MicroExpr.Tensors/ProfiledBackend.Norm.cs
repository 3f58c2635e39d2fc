namespace MicroExpr.Tensors;

/// <summary>BatchNorm's forwarding members, timed under its <see cref="OpCost"/> kinds.</summary>
public sealed partial class ProfiledBackend
{
    public void BatchNormTrainForward(Storage y, Storage mean, Storage var, Storage x, Storage? gamma, Storage? beta, int n, int c, int s, float eps)
    {
        using (Time(OpCost.BatchNormTrain(n, c, s))) Inner.BatchNormTrainForward(y, mean, var, x, gamma, beta, n, c, s, eps);
    }

    public void BatchNormApply(Storage y, Storage x, Storage mean, Storage var, Storage? gamma, Storage? beta, int n, int c, int s, float eps)
    {
        using (Time(OpCost.BatchNormApply(n, c, s))) Inner.BatchNormApply(y, x, mean, var, gamma, beta, n, c, s, eps);
    }

    public void BatchNormBackward(Storage dx, Storage dgamma, Storage dbeta, Storage dy, Storage x, Storage mean, Storage var, Storage? gamma,
        int n, int c, int s, float eps, bool training)
    {
        using (Time(OpCost.BatchNormBackward(n, c, s))) Inner.BatchNormBackward(dx, dgamma, dbeta, dy, x, mean, var, gamma, n, c, s, eps, training);
    }
}
