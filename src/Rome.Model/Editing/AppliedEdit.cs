using Rome.Model.Modeling;
using static TorchSharp.torch;

namespace Rome.Model.Editing;

/// <summary>
/// One entry of an edit stack: the facts one call of an editor wrote (one for ROME and r-ROME, a batch for MEMIT and
/// AlphaEdit), the low-rank change of each edited layer that writes them, p(target) for each with its v* (or z), the
/// Adam updates made, the context templates used and, once measured (<see cref="EditWorkflow"/>), whether it took.
/// </summary>
/// <param name="Method">"rome", "r-rome", "memit" or "alphaedit".</param>
public sealed record AppliedEdit(string Method, IReadOnlyList<EditRequest> Requests, IReadOnlyList<int> Layers, IReadOnlyList<LowRankOverlay> Overlays,
                                 IReadOnlyList<double> TargetProbabilities, int Updates, string[] ContextTemplates) : IDisposable
{
    /// <summary>The first (for ROME, the only) fact written.</summary>
    public EditRequest Request => Requests[0];

    /// <summary>The last edited layer (ROME's only one). <see cref="Layers"/> holds each overlay's.</summary>
    public int Layer => Layers[^1];

    /// <summary>p(target) with v* (or z), averaged over the facts.</summary>
    public double TargetProbability => TargetProbabilities.Average();

    /// <summary>
    /// AlphaEdit's: for each edited layer, the batch's keys [in, facts] on the model as the batch leaves it. Their
    /// K Kᵀ summed over the earlier entries of a stack is AlphaEdit's <c>cache_c</c>, so undoing an entry rolls it back.
    /// </summary>
    public IReadOnlyList<Tensor> Keys { get; init; } = [];

    public EditVerdict? Verdict { get; set; }

    /// <summary>
    /// Entries of one method as one (the facts, layers, changes and keys of each in turn), which takes over their
    /// tensors: a batch written fact by fact is one step of undo.
    /// </summary>
    public static AppliedEdit Merge(IReadOnlyList<AppliedEdit> entries) => entries.Count == 1 ? entries[0]
        : new AppliedEdit(entries[0].Method, [.. entries.SelectMany(e => e.Requests)], [.. entries.SelectMany(e => e.Layers)], [.. entries.SelectMany(e => e.Overlays)],
                          [.. entries.SelectMany(e => e.TargetProbabilities)], entries.Sum(e => e.Updates), entries[0].ContextTemplates)
          { Keys = [.. entries.SelectMany(e => e.Keys)] };

    public void Dispose()
    {
        foreach (var o in Overlays) o.Dispose();
        foreach (var k in Keys) k.Dispose();
    }
}
