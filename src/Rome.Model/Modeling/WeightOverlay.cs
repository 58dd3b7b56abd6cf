using static TorchSharp.torch;

namespace Rome.Model.Modeling;

/// <summary>
/// A change to one linear weight (by its Hugging Face name), applied at run time without writing the weight. It owns
/// its tensors.
/// </summary>
public abstract record WeightOverlay(string Module) : IDisposable
{
    /// <summary>Adds this change's contribution for input <paramref name="x"/> to the layer's output <paramref name="y"/>.</summary>
    internal abstract Tensor Apply(Tensor x, Tensor y);

    /// <summary>The change as a dense matrix in storage layout [in, out], for baking into a checkpoint.</summary>
    public abstract Tensor Dense();

    /// <summary>A copy with its own tensors.</summary>
    public abstract WeightOverlay Copy();

    public abstract void Dispose();
}

/// <summary>A dense change ΔW [in, out] (what fine-tuning one layer produces): y = x (W + ΔW) + b.</summary>
public sealed record DenseOverlay(string Module, Tensor Delta) : WeightOverlay(Module)
{
    internal override Tensor Apply(Tensor x, Tensor y)
    {
        using var change = x.matmul(Delta.to(x.dtype));
        return y.add_(change);
    }

    public override Tensor Dense() => Delta.clone();
    public override WeightOverlay Copy() => this with { Delta = Delta.clone() };
    public override void Dispose() => Delta.Dispose();
}

/// <summary>
/// A low-rank change to one linear weight, applied at run time without copying the weight. For a Conv1D weight W
/// stored [in, out] (so y = x W + b), the edited layer computes y = x W + b + (x <see cref="U"/>) <see cref="V"/>ᵀ,
/// i.e. W' = W + U Vᵀ in storage layout (W' = W + V Uᵀ in the papers' [out, in] convention). ROME's change has rank
/// one; MEMIT's and AlphaEdit's have at most the batch's size per layer.
/// </summary>
/// <param name="Module">The linear module's Hugging Face name, e.g. <c>h.17.mlp.c_proj</c>.</param>
/// <param name="U">[in, rank]: the input directions (ROME: C⁻¹k* / (C⁻¹k*)ᵀk).</param>
/// <param name="V">[out, rank]: what each direction now adds (ROME: v* − W k).</param>
public sealed record LowRankOverlay(string Module, Tensor U, Tensor V) : WeightOverlay(Module)
{
    /// <summary>The rank-one change u vᵀ (<paramref name="u"/> [in], <paramref name="v"/> [out], which stay the caller's).</summary>
    public static LowRankOverlay RankOne(string module, Tensor u, Tensor v) =>
        new(module, u.detach().unsqueeze(1).clone().DetachFromDisposeScope(), v.detach().unsqueeze(1).clone().DetachFromDisposeScope());

    public int Rank => (int)U.shape[1];

    /// <summary>
    /// The same changes with one overlay per module (the factors side by side), new tensors the caller disposes: a
    /// forward pass through hundreds of edits then makes one product per layer, not hundreds.
    /// </summary>
    public static List<LowRankOverlay> Merge(IEnumerable<LowRankOverlay> overlays) =>
        overlays.GroupBy(o => o.Module)
            .Select(g => new LowRankOverlay(g.Key, cat(g.Select(o => o.U).ToList(), 1).DetachFromDisposeScope(), cat(g.Select(o => o.V).ToList(), 1).DetachFromDisposeScope()))
            .ToList();

    internal override Tensor Apply(Tensor x, Tensor y)
    {
        using var coefficients = x.matmul(U.to(x.dtype));
        using var delta = coefficients.matmul(V.to(y.dtype).t());
        return y.add_(delta);
    }

    /// <summary>The dense change U Vᵀ in storage layout [in, out].</summary>
    public override Tensor Dense() => U.matmul(V.t());
    public override WeightOverlay Copy() => this with { U = U.clone(), V = V.clone() };

    public override void Dispose()
    {
        U.Dispose();
        V.Dispose();
    }
}
