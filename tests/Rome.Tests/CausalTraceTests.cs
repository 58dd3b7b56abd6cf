using Rome.Model;
using Rome.Model.Modeling;
using Rome.Model.Tracing;
using static TorchSharp.torch;

namespace Rome.Tests;

public class CausalTraceTests : IDisposable
{
    private readonly LanguageModel _lm = LanguageModel.Load(TestPaths.Fixture("gpt2-random"));
    private const double Noise = 0.3;

    private static TraceRequest Request(int samples = 4, TraceKind? sever = null) => new()
    {
        Prompt = "The Eiffel Tower is located in the city of", Subject = "Eiffel Tower", Samples = samples, Seed = 3, Window = 2, Sever = sever,
    };

    public void Dispose() => _lm.Dispose();

    [Fact]
    public void FastGridsEqualTheNaiveAlgorithm()
    {
        var trace = new CausalTrace(_lm);
        var fast = TraceResult.Collect(trace.Run(Request(), Noise));
        var naive = TraceResult.Collect(trace.RunNaive(Request(), Noise));
        Assert.Equal(naive.Setup, fast.Setup with { Tokens = naive.Setup.Tokens });
        foreach (var kind in new[] { TraceKind.Hidden, TraceKind.Mlp, TraceKind.Attn })
            for (int t = 0; t < fast.Setup.Tokens.Length; t++)
                for (int l = 0; l < _lm.Layers; l++)
                    Assert.True(Math.Abs(fast.Scores[kind][t][l] - naive.Scores[kind][t][l]) < 1e-5, $"{kind} token {t} layer {l}: {fast.Scores[kind][t][l]} vs {naive.Scores[kind][t][l]}");
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
        var rows = 0;
        Assert.ThrowsAny<OperationCanceledException>(() =>
        {
            foreach (var e in new CausalTrace(_lm).Run(Request(), Noise, cancel.Token))
                if (e is TraceRow && ++rows == 2) cancel.Cancel();
        });
        Assert.Equal(2, rows);
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

public class BucketTests
{
    [Fact]
    public void PositionsAreBucketedAsInThePaper()
    {
        // "The| E|iff|el| Tower| is| located| in| the| city| of": subject tokens 1..4, 11 tokens.
        var b = AverageIndirectEffect.BucketPositions(new Rome.Model.Modeling.TokenSpan(1, 4), 11);
        Assert.Equal([1], b[0]);             // first subject token
        Assert.Equal([2, 3], b[1]);          // middle subject tokens
        Assert.Equal([4], b[2]);             // last subject token
        Assert.Equal([5], b[3]);             // first subsequent token
        Assert.Equal([6, 7, 8, 9], b[4]);    // further tokens
        Assert.Equal([10], b[5]);            // last token
    }

    [Fact]
    public void ASingleTokenSubjectRightBeforeTheLastTokenLeavesBucketsEmpty()
    {
        // "Paris| is": the subject is one token, the first subsequent token is the last token.
        var b = AverageIndirectEffect.BucketPositions(new Rome.Model.Modeling.TokenSpan(0, 0), 2);
        Assert.Equal([0], b[0]);
        Assert.Empty(b[1]);
        Assert.Empty(b[2]);   // the first subject token already counts it
        Assert.Empty(b[3]);   // the last token counts it
        Assert.Empty(b[4]);
        Assert.Equal([1], b[5]);
    }
}
