using Rome.Model.Modeling;
using static TorchSharp.torch;

namespace Rome.Model.Editing;

/// <summary>One fact of a batch: p(target) on its prompt before and after, and the model's top answer after.</summary>
public sealed record FactResult(EditRequest Request, double Before, double After, string TopAfter)
{
    /// <summary>Whether the new target is now the top answer (its first token).</summary>
    public bool Took => TopAfter.Trim().Length > 0 && Request.Target.Trim().StartsWith(TopAfter.Trim(), StringComparison.Ordinal);
}

/// <summary>A batch written: the method, its layers and context templates, each fact's result, the entries pushed and the seconds taken.</summary>
public sealed record BatchOutcome(string Method, IReadOnlyList<int> Layers, IReadOnlyList<string> ContextTemplates, IReadOnlyList<FactResult> Facts, int Entries, double Seconds)
{
    public int Took => Facts.Count(f => f.Took);
}

/// <summary>
/// Many facts written into a session's model, for the CLI and the web app alike: every fact is checked first, p(target)
/// is measured on each prompt, the facts are written <paramref name="batchSize"/> at a time (each batch on top of the
/// ones before), and measured again. Nothing reaches the session until every batch is written: a failure or a cancel
/// leaves it as it was.
/// </summary>
public static class BatchWorkflow
{
    /// <param name="batchSize">Facts per entry; 0 writes them all at once (MEMIT, AlphaEdit) or all fact by fact in one entry (ROME).</param>
    /// <param name="oneEntry">Push the batches as one entry (one step of undo) rather than one entry each.</param>
    public static BatchOutcome Run(EditSession session, Editors editors, string method, IReadOnlyList<EditRequest> requests, int batchSize = 0, bool oneEntry = true,
                                   IProgress<BatchProgress>? progress = null, CancellationToken cancel = default)
    {
        if (batchSize < 0) throw new RomeException("The batch size is a whole number of facts, or 0 for all at once.");
        editors.Check(method, requests);
        var lm = session.Model;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var previous = session.Edits;
        var before = Measure(lm, requests, session.Interventions());
        var written = new List<AppliedEdit>();
        try
        {
            foreach (var batch in requests.Chunk(batchSize == 0 ? requests.Count : batchSize))
            {
                cancel.ThrowIfCancellationRequested();
                var done = written.Sum(e => e.Requests.Count);
                var offset = progress is null ? null : new SyncProgress<BatchProgress>(p => progress.Report(p with { Done = done + p.Done, Total = requests.Count }));
                written.Add(editors.Write(method, batch, [.. previous, .. written], offset, cancel));
            }
            var iv = new Interventions { Overlays = [.. session.Overlays, .. written.SelectMany(e => e.Overlays)] };
            var after = Measure(lm, requests, iv);
            var results = requests.Select((r, i) => new FactResult(r, before[i].P, after[i].P, after[i].Top)).ToList();
            var outcome = new BatchOutcome(method, editors.Layers(method), written[0].ContextTemplates, results, oneEntry ? 1 : written.Count, clock.Elapsed.TotalSeconds);
            if (oneEntry) session.Push(AppliedEdit.Merge(written));
            else foreach (var e in written) session.Push(e);
            return outcome;
        }
        catch
        {
            foreach (var e in written) e.Dispose();
            throw;
        }
    }

    /// <summary>p(target) on each fact's prompt, and the top next token there.</summary>
    private static List<(double P, string Top)> Measure(LanguageModel lm, IReadOnlyList<EditRequest> requests, Interventions iv)
    {
        using var scope = NewDisposeScope();
        using var logProbs = lm.NextTokenLogProbs(requests.Select(r => lm.Encode(r.Filled)).ToList(), iv);
        var top = logProbs.argmax(1);
        return requests.Select((r, i) => (TargetProbability.Of(lm, [r.Filled], r.Target, iv)[0], lm.Tokenizer.TokenText((int)top[i].item<long>()))).ToList();
    }
}
