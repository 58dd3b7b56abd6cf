using Rome.Model.Modeling;
using static TorchSharp.torch;

namespace Rome.Model.Editing;

/// <summary>
/// AlphaEdit (Fang et al., ICLR 2025; the original's <c>AlphaEdit_main.py</c>): MEMIT's z and keys, but each layer's
/// update is projected onto the null space of the keys the layer usually sees (<see cref="NullSpaceProjection"/>) and
/// solved against the keys of the edits made before it (<c>cache_c</c>), so a long sequence of batches neither undoes
/// earlier edits nor drifts from what the model knew:
/// <code>ΔW [in, out] = (P (K Kᵀ + cache_c) + L2·I)⁻¹ P K Rᵀ</code>
/// cache_c is the sum of K Kᵀ over the earlier AlphaEdit entries of the stack (their <see cref="AppliedEdit.Keys"/>,
/// read after each batch), so undo rolls it back with the weights.
/// </summary>
public sealed class AlphaEditEditor(LanguageModel lm, MemitHyperParameters hp)
{
    private readonly MemitEditor _memit = new(lm, hp);

    /// <summary>
    /// Writes <paramref name="requests"/> on top of <paramref name="previous"/> entries (whose changes
    /// <paramref name="overlays"/> may give merged; by default their own); <paramref name="projection"/> gives P for a
    /// layer (see <see cref="CovarianceCache.Projection"/>), which the caller keeps.
    /// </summary>
    public AppliedEdit Compute(IReadOnlyList<EditRequest> requests, Func<int, Tensor> projection, IReadOnlyList<AppliedEdit>? previous = null,
                               IReadOnlyList<WeightOverlay>? overlays = null, IProgress<BatchProgress>? progress = null, CancellationToken cancel = default, int seed = 0)
    {
        previous ??= [];
        overlays ??= previous.SelectMany(e => e.Overlays).ToList();
        var edit = _memit.Compute("alphaedit", requests, overlays, (layer, k) =>
        {
            using var scope = NewDisposeScope();
            var p = projection(layer).to(float64);
            var a = p.matmul(k.matmul(k.t()) + CacheC(previous, layer, k)) + eye(k.shape[0], dtype: float64, device: k.device) * hp.L2;
            return linalg.solve(a, p.matmul(k)).MoveToOuterDisposeScope();
        }, progress, cancel, seed);
        try
        {
            // The batch's keys on the model as it leaves it: the next batches' cache_c.
            var templates = edit.ContextTemplates;
            var groups = ContextTemplates.GroupSizes(hp.ContextTemplateLengthParams);
            var after = overlays.Concat(edit.Overlays).ToList();
            using var scope = NewDisposeScope();
            var keys = hp.Layers.Select(l => ComputeKs.Keys(lm, l, requests, templates, groups, after).to(float32).MoveToOuterDisposeScope()).ToList();
            return edit with { Keys = keys };
        }
        catch
        {
            edit.Dispose();
            throw;
        }
    }

    /// <summary>cache_c at <paramref name="layer"/>: Σ K Kᵀ over the earlier AlphaEdit entries that edited it.</summary>
    private static Tensor CacheC(IReadOnlyList<AppliedEdit> previous, int layer, Tensor like)
    {
        var sum = zeros(like.shape[0], like.shape[0], dtype: float64, device: like.device);
        foreach (var e in previous.Where(e => e.Keys.Count > 0))
            for (int j = 0; j < e.Layers.Count; j++)
            {
                if (e.Layers[j] != layer) continue;
                using var k = e.Keys[j].to(float64);
                sum.add_(k.matmul(k.t()));
            }
        return sum;
    }
}
