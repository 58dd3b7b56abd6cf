using Rome.Model.Modeling;
using static TorchSharp.torch;

namespace Rome.Model.Editing;

/// <summary>
/// The four editors behind one call, for the CLI and the web app alike: "rome" and "r-rome" write one fact at a time
/// (a batch is written fact after fact), "memit" and "alphaedit" a batch at once. Each gets C (or AlphaEdit's P) from
/// the one <see cref="CovarianceCache"/>, over <paramref name="corpusPath"/> or the model's own text.
/// </summary>
public sealed class Editors(LanguageModel lm, RomeHyperParameters rome, MemitHyperParameters memit, CovarianceCache covariances, string? corpusPath = null)
{
    public static readonly string[] Methods = ["rome", "r-rome", "memit", "alphaedit"];

    /// <summary>The model folder's settings (or its family's published ones) for both kinds of editor.</summary>
    public static Editors ForModel(LanguageModel lm, CovarianceCache covariances, string? corpusPath = null) =>
        new(lm, RomeHyperParameters.ForModel(lm.Folder, lm.Config), MemitHyperParameters.ForModel(lm.Folder, lm.Config), covariances, corpusPath);

    public RomeHyperParameters Rome => rome;
    public MemitHyperParameters Memit => memit;

    /// <summary>Whether <paramref name="method"/> writes a batch at once (MEMIT, AlphaEdit) rather than fact by fact.</summary>
    public static bool WritesBatches(string method) => method is "memit" or "alphaedit";

    /// <summary>The layers <paramref name="method"/> edits.</summary>
    public IReadOnlyList<int> Layers(string method) => WritesBatches(Require(method)) ? memit.Layers : [rome.Layer];

    /// <summary>A clear error, naming the fact, unless <paramref name="method"/> can write every one of <paramref name="requests"/>.</summary>
    public void Check(string method, IReadOnlyList<EditRequest> requests)
    {
        if (Require(method) == "alphaedit" && memit.Covariance == "identity")
            throw new RomeException("AlphaEdit projects onto the null space of C; with C = I there is none, so it needs C over text (covariance \"corpus\").");
        if (WritesBatches(method)) { new MemitEditor(lm, memit).Check(requests); return; }
        var editor = RomeEditor(method);
        if (requests.Count == 0) throw new RomeException("There are no facts to write.");
        for (int i = 0; i < requests.Count; i++)
        {
            try { editor.Check(requests[i]); }
            catch (RomeException e) { throw e.Within(requests[i].Describe(i)); }
        }
    }

    /// <summary>
    /// Writes <paramref name="requests"/> as one entry, on top of <paramref name="previous"/> entries (not pushed
    /// anywhere: the caller owns the entry).
    /// </summary>
    public AppliedEdit Write(string method, IReadOnlyList<EditRequest> requests, IReadOnlyList<AppliedEdit> previous,
                             IProgress<BatchProgress>? progress = null, CancellationToken cancel = default)
    {
        // The earlier entries as one overlay per layer: after hundreds of edits, one product per layer in each pass.
        var overlays = LowRankOverlay.Merge(previous.SelectMany(e => e.Overlays));
        try
        {
            switch (Require(method))
            {
                case "memit":
                    return new MemitEditor(lm, memit).Compute(requests, Covariance, overlays, progress, cancel);
                case "alphaedit":
                    return new AlphaEditEditor(lm, memit).Compute(requests, layer => covariances.Projection(lm, layer, memit.CovarianceTokens, memit.NullspaceThreshold, corpusPath, cancel: cancel),
                                                                  previous, overlays, progress, cancel);
                default:
                    return FactByFact(RomeEditor(method), requests, overlays, progress, cancel);
            }
        }
        finally
        {
            foreach (var o in overlays) o.Dispose();
        }
    }

    /// <summary>ROME's and r-ROME's batch: each fact on top of the ones before it, as one entry.</summary>
    private AppliedEdit FactByFact(RomeEditor editor, IReadOnlyList<EditRequest> requests, IReadOnlyList<WeightOverlay> previous,
                                   IProgress<BatchProgress>? progress, CancellationToken cancel)
    {
        var c = covariances.ForEditor(lm, rome, corpusPath, cancel: cancel);
        var written = new List<AppliedEdit>();
        try
        {
            for (int i = 0; i < requests.Count; i++)
            {
                var index = i;
                var step = progress is null ? null : new SyncProgress<EditProgress>(p => progress.Report(new BatchProgress(index, requests.Count, p)));
                written.Add(editor.Compute(requests[i], c, [.. previous, .. written.SelectMany(e => e.Overlays)], step, cancel));
            }
            return AppliedEdit.Merge(written);
        }
        catch
        {
            foreach (var e in written) e.Dispose();
            throw;
        }
    }

    private RomeEditor RomeEditor(string method) => new(lm, rome with { Key = method == "r-rome" ? "consistent" : "original" });

    private Tensor? Covariance(int layer) => memit.Covariance == "identity" ? null : covariances.Get(lm, layer, memit.CovarianceTokens, corpusPath);

    private static string Require(string method) => Methods.Contains(method) ? method
        : throw new RomeException($"Unknown editing method '{method}': choose {string.Join(", ", Methods)}.");
}
