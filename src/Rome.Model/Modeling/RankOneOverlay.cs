using static TorchSharp.torch;

namespace Rome.Model.Modeling;

/// <summary>A change to one linear weight (by its Hugging Face name), applied at run time without writing the weight.</summary>
public abstract record WeightOverlay(string Module)
{
    /// <summary>Adds this change's contribution for input <paramref name="x"/> to the layer's output <paramref name="y"/>.</summary>
    internal abstract Tensor Apply(Tensor x, Tensor y);

    /// <summary>The change as a dense matrix in storage layout [in, out], for baking into a checkpoint.</summary>
    public abstract Tensor Dense();
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
}

/// <summary>
/// A rank-one change to one linear weight, applied at run time without copying the weight.
/// For a Conv1D weight W stored [in, out] (so y = x W + b), the edited layer computes
/// y = x W + b + (x · <see cref="U"/>) <see cref="V"/>, i.e. W' = W + U Vᵀ in storage layout
/// (W' = W + V Uᵀ in the paper's [out, in] convention).
/// </summary>
/// <param name="Module">The linear module's Hugging Face name, e.g. <c>h.17.mlp.c_proj</c>.</param>
/// <param name="U">[in]: the input direction (ROME: C⁻¹k* / (C⁻¹k*)ᵀk*).</param>
/// <param name="V">[out]: what that direction now adds (ROME: v* − W k*).</param>
public sealed record RankOneOverlay(string Module, Tensor U, Tensor V) : WeightOverlay(Module), IDisposable
{
    internal override Tensor Apply(Tensor x, Tensor y)
    {
        using var coeff = x.matmul(U.to(x.dtype)).unsqueeze(-1);
        using var delta = coeff * V.to(y.dtype);
        return y.add_(delta);
    }

    /// <summary>The dense change U Vᵀ in storage layout [in, out], for baking into a checkpoint.</summary>
    public override Tensor Dense() => U.outer(V);

    /// <summary>Frees U and V.</summary>
    public void Dispose()
    {
        U.Dispose();
        V.Dispose();
    }
}
