using System.Globalization;

namespace Rome.Model.Tracing;

/// <summary>
/// The severed trace (the paper's section 2.2 and Figure 4): the hidden state traced again with the later MLPs, then
/// the later attention, frozen at the restored token (<see cref="TraceRequest.Sever"/>), with the same noise. If the
/// early effect needs the MLPs, severing them removes it.
/// </summary>
public static class SeveredTrace
{
    /// <summary>
    /// This fact's Figure 4. <paramref name="plain"/> is the hidden-state grid already traced with the same request,
    /// if any (else it is traced too).
    /// </summary>
    public static SeveredSummary Run(CausalTrace trace, TraceRequest request, double noise, TraceResult? plain, CancellationToken cancel = default)
    {
        var hidden = request with { Kinds = [TraceKind.Hidden], Sever = null };
        TraceResult Traced(TraceKind? sever) => TraceResult.Collect(trace.Run(hidden with { Sever = sever }, noise, cancel));
        return SeveredSummary.Of(plain ?? Traced(null), Traced(TraceKind.Mlp), Traced(TraceKind.Attn));
    }
}

/// <summary>
/// Figure 4 of the paper: the last subject token's hidden-state effect per layer, plain and with the MLP or the
/// attention sublayers after the restored layer severed (frozen in their corrupted state at that token), and the
/// share of the lower half's effect each loses; for one fact (<see cref="SeveredTrace"/>) or averaged over many.
/// </summary>
public sealed record SeveredSummary(double[] Plain, double[] NoMlp, double[] NoAttn, double MlpShareLost, double AttnShareLost)
{
    /// <summary>Averaged over facts: the "last subject token" bucket of each averaged hidden-state trace.</summary>
    public static SeveredSummary Of(AverageTraceResult plain, AverageTraceResult noMlp, AverageTraceResult noAttn)
    {
        double[] Curve(AverageTraceResult r) => r.Kinds[TraceKind.Hidden].Single(b => b.Bucket == "last subject token").Mean;
        return Of(Curve(plain), Curve(noMlp), Curve(noAttn));
    }

    /// <summary>One fact: the indirect effect of the last subject token's hidden state in each trace (plain, and severed).</summary>
    public static SeveredSummary Of(TraceResult plain, TraceResult noMlp, TraceResult noAttn)
    {
        double[] Curve(TraceResult r) => Enumerable.Range(0, r.Setup.Layers).Select(l => r.IndirectEffect(TraceKind.Hidden, r.Setup.Subject.Last, l)).ToArray();
        return Of(Curve(plain), Curve(noMlp), Curve(noAttn));
    }

    /// <summary>The curves, and the share of the lower half's effect each severing removes.</summary>
    public static SeveredSummary Of(double[] plain, double[] noMlp, double[] noAttn)
    {
        var lower = LowerHalf(plain.Length);
        double Lost(double[] severed) => 1 - severed[..lower].Sum() / Math.Max(1e-9, plain[..lower].Sum());
        return new SeveredSummary(plain, noMlp, noAttn, Lost(noMlp), Lost(noAttn));
    }

    /// <summary>The shares are taken over layers 0 .. EarlyLayers − 1, the lower half of the model.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public int EarlyLayers => LowerHalf(Plain.Length);

    private static int LowerHalf(int layers) => layers / 2;

    /// <summary>
    /// A share lost as a percentage with one decimal ("49.5 %"). Below 0.5 % (or negative, when sampling noise makes a
    /// severed state a little stronger) it is "about 0 %": severing removed nothing measurable.
    /// </summary>
    public static string Percent(double share) => share < 0.005 ? "about 0 %" : SiteSummary.Rounded(share * 100, 1) + " %";

    public string ToCsv() => "layer,hidden,hidden_mlp_severed,hidden_attn_severed\n" + string.Concat(Plain.Select((v, l) =>
        string.Create(CultureInfo.InvariantCulture, $"{l},{v:G6},{NoMlp[l]:G6},{NoAttn[l]:G6}\n")));
}
