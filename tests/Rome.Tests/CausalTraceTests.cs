using System.Text.Json;
using Rome.Model.Tracing;

namespace Rome.Tests;

public class CausalTraceTests(RandomGpt2Fixture fixture) : IClassFixture<RandomGpt2Fixture>
{
    private readonly LanguageModel _lm = fixture.Model;
    internal const double Noise = 0.3;

    private static TraceRequest Request(int samples = 4, TraceKind? sever = null) => new()
    {
        Prompt = "The Eiffel Tower is located in the city of", Subject = "Eiffel Tower", Samples = samples, Seed = 3, Window = 2, Sever = sever,
    };


    internal static void AssertSameGrid(double[][] expected, double[][] actual, string what)
    {
        for (int t = 0; t < expected.Length; t++)
            for (int l = 0; l < expected[t].Length; l++)
                Assert.True(Math.Abs(expected[t][l] - actual[t][l]) < 1e-5, $"{what}, token {t}, layer {l}: {actual[t][l]} instead of {expected[t][l]}");
    }

    [Theory]
    [InlineData(null)]
    [InlineData(TraceKind.Mlp)]
    [InlineData(TraceKind.Attn)]
    public void GridsEqualAPlainReference(TraceKind? sever)
    {
        var request = Request(sever: sever) with { Kinds = sever is null ? [TraceKind.Hidden, TraceKind.Mlp, TraceKind.Attn] : [TraceKind.Hidden] };
        var fast = TraceResult.Collect(new CausalTrace(_lm).Run(request, Noise));
        // Batches of a few kilobytes: every token and every cell in a batch of its own.
        var small = TraceResult.Collect(new CausalTrace(_lm, batchBytes: 4096).Run(request, Noise));
        var naive = NaiveTrace.Run(_lm, request, Noise);
        Assert.Equal(naive.Setup.AnswerToken, fast.Setup.AnswerToken);
        foreach (var kind in request.Kinds)
        {
            AssertSameGrid(naive.Scores[kind], fast.Scores[kind], $"{kind}");
            AssertSameGrid(naive.Scores[kind], small.Scores[kind], $"{kind} in small batches");
        }
    }

    /// <summary>Tracing with a session's edits is tracing the model whose weights hold them (baked into a checkpoint).</summary>
    [Fact]
    public void ATraceWithEditsEqualsATraceOfTheModelWithTheEditsBakedIn()
    {
        using var session = new Rome.Model.Editing.EditSession(_lm);
        var hp = new Rome.Model.Editing.RomeHyperParameters { Layer = 1, Steps = 5, ContextTemplateLengthParams = [[5, 1]] };
        session.Apply(new Rome.Model.Editing.RomeEditor(_lm, hp), new Rome.Model.Editing.EditRequest("The {} is located in the city of", "Eiffel Tower", "Rome"), covariance: null);
        var folder = TestPaths.TempFolder();
        session.Bake(folder);
        using var baked = LanguageModel.Load(folder);

        var request = Request() with { Kinds = [TraceKind.Hidden, TraceKind.Mlp] };
        var plain = TraceResult.Collect(new CausalTrace(_lm).Run(request, Noise));
        var edited = TraceResult.Collect(new CausalTrace(_lm).Run(request with { Edits = session.Overlays }, Noise));
        var reference = TraceResult.Collect(new CausalTrace(baked).Run(request, Noise));

        Assert.Equal(reference.Setup.AnswerToken, edited.Setup.AnswerToken);
        Assert.True(Math.Abs(reference.Setup.HighScore - edited.Setup.HighScore) < 1e-5);
        Assert.True(Math.Abs(plain.Setup.HighScore - edited.Setup.HighScore) > 1e-4 || plain.Setup.AnswerToken != edited.Setup.AnswerToken, "the edit should change the traced model");
        foreach (var kind in request.Kinds)
            AssertSameGrid(reference.Scores[kind], edited.Scores[kind], $"{kind} with edits");
    }

    [Fact]
    public void TheTraceSaysWhichSubjectsSetTheNoise()
    {
        // The fixture has no fact manifest: σ comes from known_1000.json's subjects, as the original's.
        Assert.Equal("3 x σ of the embeddings of the subjects of the paper's known_1000.json", NoiseLevel.Describe("3s", _lm));
        Assert.Equal("fixed", NoiseLevel.Describe("0.25", _lm));
        using var bundled = LanguageModel.Load(TestPaths.BundledModel);
        Assert.Contains("the subjects the model was trained on", NoiseLevel.Describe("3s", bundled));
        var setup = TraceResult.Collect(new CausalTrace(_lm).Run(Request() with { Kinds = [TraceKind.Hidden], NoiseSource = "fixed" }, Noise)).Setup;
        Assert.Equal("fixed", setup.NoiseSource);
    }

    [Theory]
    [InlineData("Paris is the capital of", "Paris", 3, 1)]          // the subject first: every token is traced
    [InlineData("I took a photo of the Eiffel Tower", "Eiffel Tower", 1, 2)] // the subject last
    [InlineData("Rome", "Rome", 5, 3)]                              // one token; a window wider than the model
    public void GridsEqualAPlainReferenceWhereverTheSubjectIs(string prompt, string subject, int window, int samples)
    {
        var request = new TraceRequest { Prompt = prompt, Subject = subject, Samples = samples, Seed = 1, Window = window };
        var fast = TraceResult.Collect(new CausalTrace(_lm).Run(request, Noise));
        var small = TraceResult.Collect(new CausalTrace(_lm, batchBytes: 4096).Run(request, Noise));
        var naive = NaiveTrace.Run(_lm, request, Noise);
        foreach (var kind in request.Kinds)
        {
            AssertSameGrid(naive.Scores[kind], fast.Scores[kind], $"{kind}");
            AssertSameGrid(naive.Scores[kind], small.Scores[kind], $"{kind} in small batches");
        }
    }

    [Fact]
    public void ScoresMatchAHandWrittenReference()
    {
        // An independent computation of the answer, the high and low scores and one cell, straight from the hook API.
        var request = Request(samples: 3);
        var result = TraceResult.Collect(new CausalTrace(_lm).Run(request, Noise));
        var ids = _lm.Encode(request.Prompt);
        var span = _lm.Tokenizer.FindSpan(request.Prompt, request.Subject);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var generator = new TorchSharp.torch.Generator((ulong)request.Seed);
        var noise = randn([3, span.Length, _lm.Config.Embd], generator: generator) * Noise;

        var cleanProbs = _lm.Model.Forward(_lm.Ids(ids))[0, -1].softmax(-1);
        var answer = (int)cleanProbs.argmax().item<long>();
        Assert.Equal(answer, result.Setup.AnswerToken);
        Assert.Equal(cleanProbs[answer].item<float>(), result.Setup.HighScore, 1e-6);

        Tensor Noisy(Tensor x)
        {
            var y = x.clone();
            for (int p = 0; p < span.Length; p++) y[.., span.First + p] += noise[.., p];
            return y;
        }
        var batch = _lm.Ids(ids).expand(3, -1);
        var low = _lm.Model.Forward(batch, new Interventions().Hook(HookPoint.Embed, Noisy))[.., -1].softmax(-1)[.., answer].mean().item<float>();
        Assert.Equal(low, result.Setup.LowScore, 1e-5);

        Tensor? clean = null;
        _lm.Model.Forward(_lm.Ids(ids), new Interventions().Capture(HookPoint.Resid(1), t => clean = t));
        var last = span.Last;
        var restored = _lm.Model.Forward(batch, new Interventions()
            .Hook(HookPoint.Embed, Noisy)
            .Hook(HookPoint.Resid(1), x => { var y = x.clone(); y[.., last] = clean![0, last]; return y; }))[.., -1].softmax(-1)[.., answer].mean().item<float>();
        Assert.Equal(restored, result.Scores[TraceKind.Hidden][last][1], 1e-5);

        // Restoring the clean last-layer state at the last token gives back the clean probability exactly.
        Assert.Equal(result.Setup.HighScore, result.Scores[TraceKind.Hidden][ids.Length - 1][_lm.Layers - 1], 1e-5);
    }

    [Fact]
    public void TokensBeforeTheSubjectScoreTheLowScore()
    {
        var result = TraceResult.Collect(new CausalTrace(_lm).Run(Request(), Noise));
        Assert.Equal(1, result.Setup.Subject.First); // "The| E|iff|el| Tower"
        foreach (var kind in result.Scores.Keys)
            Assert.All(result.Scores[kind][0], s => Assert.Equal(result.Setup.LowScore, s));
    }

    /// <summary>One fact's Figure 4: the curves are the last subject token's hidden-state effects of the three traces.</summary>
    [Fact]
    public void AFactsSeveredSummaryReadsTheLastSubjectTokensCurves()
    {
        TraceResult Trace(TraceKind? sever) => TraceResult.Collect(new CausalTrace(_lm).Run(Request(sever: sever) with { Kinds = [TraceKind.Hidden] }, Noise));
        var (plain, mlp, attn) = (Trace(null), Trace(TraceKind.Mlp), Trace(TraceKind.Attn));
        var summary = SeveredSummary.Of(plain, mlp, attn);
        var last = plain.Setup.Subject.Last;
        Assert.Equal(Enumerable.Range(0, _lm.Layers).Select(l => plain.IndirectEffect(TraceKind.Hidden, last, l)), summary.Plain);
        Assert.Equal(Enumerable.Range(0, _lm.Layers).Select(l => mlp.IndirectEffect(TraceKind.Hidden, last, l)), summary.NoMlp);
        var lower = _lm.Layers / 2;
        Assert.Equal(1 - summary.NoAttn[..lower].Sum() / summary.Plain[..lower].Sum(), summary.AttnShareLost, 9);
    }

    /// <summary>
    /// Shares are shown to one decimal, so 49.5 % is not rounded up to 50 %; below half a percent, or negative (sampling
    /// noise can make a severed state a little stronger), severing removed nothing measurable: "about 0 %".
    /// </summary>
    [Theory]
    [InlineData(0.4950220230587693, "49.5 %")]
    [InlineData(0.005, "0.5 %")]
    [InlineData(0.0049, "about 0 %")]
    [InlineData(-0.0004, "about 0 %")]
    [InlineData(-0.029, "about 0 %")]
    public void SharesArePrintedToOneDecimal(double share, string text) => Assert.Equal(text, SeveredSummary.Percent(share));

    /// <summary>The sites summary shows a hidden effect of -2e-9 at the top layer as 0.00, not -0.00.</summary>
    [Fact]
    public void SitesSummaryShowsATinyNegativeEffectAsZero() =>
        Assert.Contains("(top layer: 0.00, last token's: 1.00)", new SiteSummary(0.871, 8, 3, 0.487, 0.02, 2, 0.614, -2e-9, 1.0, 5, 0.653).ToString());

    /// <summary><c>rome trace --sever</c> is the web app's workflow: the grids, then this fact's Figure 4 from the same traces.</summary>
    [Fact]
    public async Task TheCliTraceWithSeverGivesTheGridsAndFigure4()
    {
        var r = Request(samples: 2);
        var (exit, output, error) = await TestPaths.RunCli("trace", "--model", TestPaths.Fixture("gpt2-random"), "--prompt", r.Prompt, "--subject", r.Subject,
            "--samples", "2", "--seed", "3", "--window", "2", "--noise", Noise.ToString(System.Globalization.CultureInfo.InvariantCulture), "--sever", "--json");
        Assert.True(exit == 0, error);
        using var json = JsonDocument.Parse(output);
        var expected = TraceWorkflow.Run(_lm, r, Noise, sever: true);
        var hidden = json.RootElement.GetProperty("grids").GetProperty("hidden").Deserialize<double[][]>()!;
        var last = expected.Result.Setup.Subject.Last;
        Assert.Equal(expected.Result.Scores[TraceKind.Hidden][last], hidden[last]);
        var severed = json.RootElement.GetProperty("severed");
        Assert.Equal(expected.Severed!.NoMlp, severed.GetProperty("noMlp").Deserialize<double[]>()!);
        Assert.Equal(expected.Severed.AttnShareLost, severed.GetProperty("attnShareLost").GetDouble(), 1e-12);
    }

    [Fact]
    public void SeveredTraceEqualsTheNaiveSeveredComputation()
    {
        var request = Request(samples: 2, sever: TraceKind.Mlp) with { Kinds = [TraceKind.Hidden] };
        var severed = TraceResult.Collect(new CausalTrace(_lm).Run(request, Noise));
        var plain = TraceResult.Collect(new CausalTrace(_lm).Run(request with { Sever = null }, Noise));
        var last = severed.Setup.Subject.Last;
        // At the last layer nothing comes after, so severing changes nothing there.
        Assert.Equal(plain.Scores[TraceKind.Hidden][last][_lm.Layers - 1], severed.Scores[TraceKind.Hidden][last][_lm.Layers - 1], 1e-6);
        // Earlier, the restored state's influence through later MLPs at that token is cut, so the scores differ.
        Assert.NotEqual(plain.Scores[TraceKind.Hidden][last][0], severed.Scores[TraceKind.Hidden][last][0]);
    }

    [Fact]
    public void BadInputIsAClearError()
    {
        var trace = new CausalTrace(_lm);
        Assert.Contains("does not occur", Assert.Throws<RomeException>(() => trace.Run(Request() with { Subject = "Louvre" }, Noise).First()).Message);
        Assert.Contains("empty", Assert.Throws<RomeException>(() => trace.Run(Request() with { Prompt = "" , Subject = "x"}, Noise).First()).Message);
        Assert.Throws<RomeException>(() => trace.Run(Request(samples: 0), Noise).First());
        Assert.Throws<RomeException>(() => trace.Run(Request(), -1).First());
    }

    [Fact]
    public void CancellationStopsPromptlyAndLeavesTheModelClean()
    {
        using var before = _lm.NextTokenLogProbs(_lm.Encode("The Eiffel Tower is located in the city of"));
        using var cancel = new CancellationTokenSource();
        var updates = 0;
        Assert.ThrowsAny<OperationCanceledException>(() =>
        {
            foreach (var e in new CausalTrace(_lm).Run(Request(), Noise, cancel.Token))
                if (e is TraceCells && ++updates == 2) cancel.Cancel();
        });
        Assert.Equal(2, updates);
        using var after = _lm.NextTokenLogProbs(_lm.Encode("The Eiffel Tower is located in the city of"));
        Assert.True(before.eq(after).all().item<bool>());
    }

    [Fact]
    public void DefaultWindowIsProportionate()
    {
        Assert.Equal(10, CausalTrace.DefaultWindow(48));
        Assert.Equal(3, CausalTrace.DefaultWindow(12));
        Assert.Equal(2, CausalTrace.DefaultWindow(6));
        Assert.Equal((0, 2), CausalTrace.WindowAround(0, 4, 6));
        Assert.Equal((1, 5), CausalTrace.WindowAround(3, 4, 6));
        Assert.Equal((42, 48), CausalTrace.WindowAround(47, 10, 48)); // the original: range(max(0, l - w // 2), min(n, l - (-w // 2)))
    }
}
