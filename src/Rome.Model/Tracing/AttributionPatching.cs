using Rome.Model.Modeling;
using static TorchSharp.torch;

namespace Rome.Model.Tracing;

/// <summary>
/// Attribution patching (Nanda 2023; Syed et al. 2023, arXiv 2310.10348): every cell of the grids estimated to first
/// order from the two runs and one backward pass. Putting the restored run's state r in place of the base run's b
/// changes the metric by about (r − b) · ∂metric/∂b, the gradient taken in the base run; a window of MLP or attention
/// outputs adds up its layers' estimates. The runs are exactly the patching trace's (<see cref="CausalTrace"/>: the same
/// noise or replacements, metric and direction), so the grids compare cell for cell (<see cref="TraceAgreement"/>).
/// One forward and one backward pass of the samples instead of a forward pass per cell: seconds for a large model on
/// a CPU, at a price in accuracy that has to be measured.
/// </summary>
public sealed class AttributionPatching(LanguageModel lm)
{
    public IEnumerable<TraceEvent> Run(TraceRequest request, double noise, CancellationToken cancel = default)
    {
        if (request.Sever is not null) throw new RomeException("Severing needs real patching: trace with --method patch.");
        using var prepared = new CausalTrace(lm).Prepare(request, noise);
        var setup = prepared.Setup;
        yield return new TraceStarted(setup);
        cancel.ThrowIfCancellationRequested();
        var effects = Effects(prepared);   // [point] -> per token
        double total = setup.Kinds.Count, done = 0;
        foreach (var kind in setup.Kinds)
        {
            var grid = setup.Tokens.Select((_, t) => Enumerable.Range(0, lm.Layers).Select(layer =>
                setup.Baseline + Points(kind, layer, setup.Window).Sum(p => effects[p][t])).ToArray()).ToArray();
            var tokens = Enumerable.Range(0, setup.Tokens.Length).ToArray();
            yield return new TraceCells(kind, tokens, Enumerable.Range(0, lm.Layers).ToArray(), grid, ++done / total);
        }
    }

    /// <summary>The states a cell puts in: the hidden state of its layer, or the window of MLP or attention outputs around it.</summary>
    private IEnumerable<HookPoint> Points(TraceKind kind, int layer, int window)
    {
        if (kind == TraceKind.Hidden) { yield return HookPoint.Resid(layer); yield break; }
        var (from, to) = CausalTrace.WindowAround(layer, window, lm.Layers);
        for (int l = from; l < to; l++) yield return kind == TraceKind.Mlp ? HookPoint.Mlp(l) : HookPoint.Attn(l);
    }

    /// <summary>
    /// Per hook point and token, the first-order change of the metric (the mean over samples) when the restored run's
    /// state is put in at that token alone: Σ over samples and width of (restored − base) · gradient.
    /// </summary>
    private Dictionary<HookPoint, double[]> Effects(CausalTrace.Prepared prepared)
    {
        using var scope = NewDisposeScope();
        using var grad = enable_grad();
        var samples = prepared.Setup.Samples;
        var points = Enumerable.Range(0, lm.Layers).SelectMany(l => new[] { HookPoint.Resid(l), HookPoint.Mlp(l), HookPoint.Attn(l) }).ToList();
        // A zero added at each point: its gradient is the metric's gradient with respect to the activation there.
        var probes = points.ToDictionary(p => p, p => zeros_like(prepared.Base[p]).requires_grad_(true));
        var iv = prepared.BaseInterventions();
        foreach (var (point, probe) in probes) iv.Hook(point, x => x + probe);
        var logits = lm.Model.Forward(prepared.BaseInput, iv, lastOnly: true)[.., -1];
        prepared.Metric(logits, arange(samples, device: lm.Device)).mean().backward();
        using var noGrad = no_grad();
        return points.ToDictionary(p => p, p =>
            ((prepared.Restored[p] - prepared.Base[p]) * probes[p].grad!).sum([0, 2]).to(float64).data<double>().ToArray());
    }
}

/// <summary>How well estimated grids (attribution patching) agree with patched ones, per kind.</summary>
/// <param name="RankCorrelation">Spearman's rank correlation over the cells from the subject's first token on (the cells before it equal the baseline in both, by construction).</param>
/// <param name="PatchedTop">The cell (token, layer) with the largest patched score.</param>
/// <param name="EstimatedTop">The cell with the largest estimated score.</param>
public sealed record TraceAgreement(TraceKind Kind, double RankCorrelation, (int Token, int Layer) PatchedTop, (int Token, int Layer) EstimatedTop)
{
    public bool SameTop => PatchedTop == EstimatedTop;

    public static IReadOnlyList<TraceAgreement> Compare(TraceResult patched, TraceResult estimated) =>
        patched.Scores.Keys.Where(estimated.Scores.ContainsKey).Select(kind =>
        {
            var from = patched.Setup.Subject.First;
            var cells = patched.Scores[kind].Skip(from).SelectMany((row, t) => row.Select((v, l) => (Token: from + t, Layer: l, Patched: v, Estimated: estimated.Scores[kind][from + t][l]))).ToList();
            return new TraceAgreement(kind, Spearman(cells.Select(c => c.Patched).ToArray(), cells.Select(c => c.Estimated).ToArray()),
                cells.MaxBy(c => c.Patched) is var p ? (p.Token, p.Layer) : default, cells.MaxBy(c => c.Estimated) is var e ? (e.Token, e.Layer) : default);
        }).ToList();

    /// <summary>Spearman's ρ: Pearson's correlation of the ranks (ties take their mean rank).</summary>
    public static double Spearman(double[] a, double[] b)
    {
        double[] Ranks(double[] x)
        {
            var order = Enumerable.Range(0, x.Length).OrderBy(i => x[i]).ToArray();
            var ranks = new double[x.Length];
            for (int i = 0; i < order.Length;)
            {
                var j = i;
                while (j + 1 < order.Length && x[order[j + 1]] == x[order[i]]) j++;
                for (int k = i; k <= j; k++) ranks[order[k]] = (i + j) / 2.0;
                i = j + 1;
            }
            return ranks;
        }
        var (ra, rb) = (Ranks(a), Ranks(b));
        double ma = ra.Average(), mb = rb.Average();
        double cov = 0, va = 0, vb = 0;
        for (int i = 0; i < ra.Length; i++) { cov += (ra[i] - ma) * (rb[i] - mb); va += (ra[i] - ma) * (ra[i] - ma); vb += (rb[i] - mb) * (rb[i] - mb); }
        return va == 0 || vb == 0 ? double.NaN : cov / Math.Sqrt(va * vb);
    }
}
