using Rome.Model.Modeling;
using Rome.Model.Tracing;

namespace Rome.Model.Evaluation;

/// <summary>One CounterFact case: where the trace puts the fact, and where ROME's edit of it works best.</summary>
/// <param name="Effects">The MLP grid's indirect effect at the last subject token, per edited layer.</param>
/// <param name="Scores">ROME's edit score at each edited layer: the mean of the case's efficacy, paraphrase and neighbourhood magnitudes (EM, PM, NM).</param>
public sealed record LocalisedCase(int CaseId, string Subject, int[] Layers, double[] Effects, double[] Scores)
{
    public int TracePeak => Layers[Array.IndexOf(Effects, Effects.Max())];
    public int BestEdit => Layers[Array.IndexOf(Scores, Scores.Max())];
}

/// <summary>
/// Does localisation inform editing? (Hase et al., NeurIPS 2023.) Over the same cases: rank correlations between the
/// layer where the trace peaks and the layer where the edit works best, and, over every (case, layer) pair, between
/// the trace's effect at a layer and the edit's score there.
/// </summary>
public sealed record LocalisationReport(IReadOnlyList<LocalisedCase> Cases)
{
    public double PeakCorrelation => TraceAgreement.Spearman(Cases.Select(c => (double)c.TracePeak).ToArray(), Cases.Select(c => (double)c.BestEdit).ToArray());
    public double SameLayerShare => Cases.Count(c => c.TracePeak == c.BestEdit) / (double)Math.Max(1, Cases.Count);
    public double EffectScoreCorrelation => TraceAgreement.Spearman(Cases.SelectMany(c => c.Effects).ToArray(), Cases.SelectMany(c => c.Scores).ToArray());

    /// <summary>How often each (trace peak, best edit) pair of layers occurs.</summary>
    public IReadOnlyDictionary<(int TracePeak, int BestEdit), int> Pairs =>
        Cases.GroupBy(c => (c.TracePeak, c.BestEdit)).ToDictionary(g => g.Key, g => g.Count());

    /// <summary>
    /// Traces each case's rewrite prompt (MLP, the paper's settings, seed = case id) and reads its edit score per layer
    /// from a layer sweep's per-case results (<paramref name="scores"/>: layer → case id → scores).
    /// </summary>
    public static LocalisationReport Compute(LanguageModel lm, IReadOnlyList<CounterFactCase> cases, IReadOnlyDictionary<int, IReadOnlyDictionary<int, CaseScores>> scores,
                                             double noise, int samples = 10, IProgress<(int Done, int Total)>? progress = null, CancellationToken cancel = default)
    {
        var layers = scores.Keys.Order().ToArray();
        var trace = new CausalTrace(lm);
        var found = new List<LocalisedCase>();
        var usable = cases.Where(c => layers.All(l => scores[l].ContainsKey(c.CaseId))).ToList();
        for (int i = 0; i < usable.Count; i++)
        {
            cancel.ThrowIfCancellationRequested();
            var c = usable[i];
            var request = new TraceRequest { Prompt = c.RewritePrompt, Subject = c.Rewrite.Subject, Kinds = [TraceKind.Mlp], Samples = samples, Seed = c.CaseId };
            var result = TraceResult.Collect(trace.Run(request, noise, cancel));
            var last = result.Setup.Subject.Last;
            found.Add(new LocalisedCase(c.CaseId, c.Rewrite.Subject, layers,
                layers.Select(l => result.IndirectEffect(TraceKind.Mlp, last, l)).ToArray(),
                layers.Select(l => { var s = scores[l][c.CaseId]; return (s.EM + s.PM + s.NM) / 3; }).ToArray()));
            progress?.Report((i + 1, usable.Count));
        }
        return new LocalisationReport(found);
    }
}
