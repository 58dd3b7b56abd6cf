using static TorchSharp.torch;

namespace Rome.Model.Editing;

/// <summary>
/// AlphaEdit's projection (the original's <c>get_project</c> in <c>experiments/evaluate.py</c>): P = Û Ûᵀ, where Û are
/// the singular vectors of C = E[k kᵀ] whose singular values fall below a threshold. Keys the layer usually sees lie
/// (almost) outside that null space, so an update ΔW P leaves their outputs (almost) as they were.
/// </summary>
public static class NullSpaceProjection
{
    /// <summary>P [width, width] (float64) for C (float64), and how many directions it keeps.</summary>
    public static (Tensor P, int Kept) Of(Tensor c, double threshold)
    {
        using var scope = NewDisposeScope();
        var (u, s, _) = linalg.svd(c.to(float64), fullMatrices: false);
        var small = (s < threshold).nonzero().flatten();
        var basis = u.index_select(1, small);
        return (basis.matmul(basis.t()).MoveToOuterDisposeScope(), (int)small.shape[0]);
    }
}
