using Rome.Model.Editing;
using Rome.Model.Facts;
using Rome.Model.Modeling;

namespace Rome.Model.Evaluation;

/// <summary>
/// One checkpoint of a many-edits run: the CounterFact scores of every case edited so far (GE and RS over a fixed
/// sample of the cases' generation prompts), the model's recall of facts no case touches (retention) beside the
/// unedited model's, and the seconds since the run began.
/// </summary>
public sealed record SequenceCheckpoint(int Edits, Summary Summary, double Retention, double RetentionUnedited, double? GEUnedited, double Seconds);

/// <summary>A many-edits run in progress: the facts written so far of the total, the editor's own progress, and the checkpoints so far.</summary>
public sealed record ManyEditsProgress(int Written, int Total, BatchProgress? Editing, IReadOnlyList<SequenceCheckpoint> Checkpoints);

/// <summary>
/// CounterFact with many edits in one model. All cases in one batch, then every case scored, is the MEMIT paper's
/// evaluation; <paramref name="batchSize"/> cases at a time with a checkpoint every <paramref name="checkpointEvery"/>
/// edits is the AlphaEdit paper's sequential one. Retention is top-1 recall of <see cref="RetentionSample"/> facts
/// from the model's manifest (<see cref="FactCorpus"/>) whose subjects no case edits, with their first trained prompt.
/// </summary>
public sealed class ManyEditsEvaluation(LanguageModel lm, Editors editors, CounterFactEvaluator scorer, FactCorpus? corpus)
{
    public int RetentionSample { get; init; } = 500;
    /// <summary>How many cases' generation prompts GE and RS are measured on at each checkpoint.</summary>
    public int GenerationSample { get; init; } = 20;

    public List<SequenceCheckpoint> Run(IReadOnlyList<CounterFactCase> cases, string method, int batchSize, int checkpointEvery,
                                IProgress<ManyEditsProgress>? progress = null, CancellationToken cancel = default)
    {
        if (batchSize <= 0 || checkpointEvery <= 0) throw new RomeException("The batch size and the checkpoint interval are whole numbers of cases, at least 1.");
        var requests = cases.Select(c => new EditRequest(c.Rewrite.Prompt, c.Rewrite.Subject, c.Rewrite.TargetNew.Str, c.Rewrite.TargetTrue.Str)).ToList();
        editors.Check(method, requests);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var health = new ModelHealth(lm, corpus, cases.Select(c => c.Rewrite.Subject), RetentionSample);
        var sample = cases.Take(GenerationSample).Select(c => c.CaseId).ToHashSet();
        var retentionUnedited = health.Retention(Interventions.None, cancel) ?? double.NaN;
        var geUnedited = CounterFactMetrics.Summarise(method, cases.Where(c => sample.Contains(c.CaseId)).Select(c => scorer.Measure(c, Interventions.None, cancel, generate: true)).ToList()).GE;

        var checkpoints = new List<SequenceCheckpoint>();
        var entries = new List<AppliedEdit>();
        try
        {
            var written = 0;
            var next = Math.Min(checkpointEvery, cases.Count);
            while (written < cases.Count)
            {
                cancel.ThrowIfCancellationRequested();
                var batch = requests.Skip(written).Take(batchSize).ToList();
                var done = written;
                var editing = progress is null ? null : new SyncProgress<BatchProgress>(p => progress.Report(new ManyEditsProgress(done, cases.Count, p with { Done = done + p.Done, Total = cases.Count }, checkpoints.ToList())));
                entries.Add(editors.Write(method, batch, entries, editing, cancel));
                written += batch.Count;
                if (written < next && written < cases.Count) continue;
                checkpoints.Add(Measure(cases.Take(written).ToList(), entries, sample, health, retentionUnedited, geUnedited, clock.Elapsed.TotalSeconds, method, cancel));
                progress?.Report(new ManyEditsProgress(written, cases.Count, null, checkpoints.ToList()));
                next = Math.Min(next + checkpointEvery, cases.Count);
            }
            return checkpoints;
        }
        finally
        {
            foreach (var e in entries) e.Dispose();
        }
    }

    private SequenceCheckpoint Measure(IReadOnlyList<CounterFactCase> edited, IReadOnlyList<AppliedEdit> entries, HashSet<int> sample, ModelHealth health,
                               double retentionUnedited, double? geUnedited, double seconds, string method, CancellationToken cancel)
    {
        var merged = LowRankOverlay.Merge(entries.SelectMany(e => e.Overlays));
        try
        {
            var iv = new Interventions { Overlays = merged };
            var scores = edited.Select(c => scorer.Measure(c, iv, cancel, generate: sample.Contains(c.CaseId))).ToList();
            var retention = health.Retention(iv, cancel) ?? double.NaN;
            return new SequenceCheckpoint(edited.Count, CounterFactMetrics.Summarise(method, scores), retention, retentionUnedited, geUnedited, seconds);
        }
        finally
        {
            foreach (var o in merged) o.Dispose();
        }
    }
}
