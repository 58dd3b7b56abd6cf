using Rome.Model.Tracing;

namespace Rome.Tests;

/// <summary>
/// Tracing beyond the paper (issue #31): token replacement, the other metrics and the noising direction against a
/// plain reference that runs the model once per cell (<see cref="NaiveTrace"/>), and attribution patching's gradients
/// against finite differences.
/// </summary>
public class TraceOptionsTests(RandomGpt2Fixture fixture) : IClassFixture<RandomGpt2Fixture>
{
    private readonly LanguageModel _lm = fixture.Model;

    /// <summary>Subjects to put in the Eiffel Tower's place: some take its two tokens, some do not.</summary>
    private static readonly string[] Pool =
    [
        "Statue of Liberty", "Big Ben", "Colosseum", "Golden Gate", "Taj Mahal", "Sydney Opera", "Louvre", "Kremlin",
        "Space Needle", "Burj Khalifa", "Brandenburg Gate", "Leaning Tower", "Alhambra", "Acropolis", "Empire State", "Machu Picchu",
    ];

    private static TraceRequest Request(TraceOptions options, int samples = 3) => new()
    {
        Prompt = "The Eiffel Tower is located in the city of", Subject = "Eiffel Tower", Samples = samples, Seed = 3, Window = 2,
        Options = options, ReplacementPool = Pool,
    };

    [Theory]
    [InlineData(TraceCorruption.Str, TraceMetric.Prob, TraceDirection.Denoise)]
    [InlineData(TraceCorruption.Str, TraceMetric.LogitDiff, TraceDirection.Denoise)]
    [InlineData(TraceCorruption.Noise, TraceMetric.LogProb, TraceDirection.Denoise)]
    [InlineData(TraceCorruption.Noise, TraceMetric.LogitDiff, TraceDirection.Noise)]
    [InlineData(TraceCorruption.Str, TraceMetric.LogitDiff, TraceDirection.Noise)]
    public void GridsEqualAPlainReference(TraceCorruption corruption, TraceMetric metric, TraceDirection direction)
    {
        var request = Request(new TraceOptions(corruption, metric, direction));
        var fast = TraceResult.Collect(new CausalTrace(_lm).Run(request, CausalTraceTests.Noise));
        var small = TraceResult.Collect(new CausalTrace(_lm, batchBytes: 4096).Run(request, CausalTraceTests.Noise));
        var naive = NaiveTrace.Run(_lm, request, CausalTraceTests.Noise);
        Assert.Equal(naive.Setup.AnswerToken, fast.Setup.AnswerToken);
        Assert.Equal(naive.Setup.LowScore, fast.Setup.LowScore, 1e-5);
        Assert.Equal(naive.Setup.HighScore, fast.Setup.HighScore, 1e-5);
        if (corruption == TraceCorruption.Str) Assert.Equal(naive.Setup.Replacements, fast.Setup.Replacements);
        foreach (var kind in request.Kinds)
        {
            CausalTraceTests.AssertSameGrid(naive.Scores[kind], fast.Scores[kind], $"{kind}");
            CausalTraceTests.AssertSameGrid(naive.Scores[kind], small.Scores[kind], $"{kind} in small batches");
        }
        // Cells before the subject change nothing: the corrupted level when restoring, the clean one when corrupting.
        var expected = direction == TraceDirection.Denoise ? fast.Setup.LowScore : fast.Setup.HighScore;
        Assert.All(fast.Scores[TraceKind.Hidden][0], v => Assert.Equal(expected, v, 1e-6));
    }

    [Fact]
    public void TokenReplacementTakesSubjectsOfTheSameLengthAndAnotherAnswer()
    {
        var request = Request(new TraceOptions(TraceCorruption.Str), samples: 4);
        var setup = TraceResult.Collect(new CausalTrace(_lm).Run(request with { Kinds = [TraceKind.Hidden] }, CausalTraceTests.Noise)).Setup;
        var ids = _lm.Encode(request.Prompt);
        var chosen = TokenReplacement.Choose(_lm, request.Prompt, request.Subject, setup.AnswerToken, Pool, 4, request.Seed);
        Assert.Equal(setup.Replacements, chosen.Select(c => c.Subject).ToList());
        Assert.Equal(setup.Samples, chosen.Count);
        foreach (var c in chosen)
        {
            Assert.Equal(ids.Length, c.Ids.Length);
            Assert.Equal(ids[..setup.Subject.First], c.Ids[..setup.Subject.First]);
            Assert.Equal(ids[(setup.Subject.Last + 1)..], c.Ids[(setup.Subject.Last + 1)..]);
            Assert.NotEqual(setup.AnswerToken, (int)_lm.Predict(c.Ids, top: 1).Top[0].Id);
        }
        // Another seed, another order; no subject that fits: a clear error.
        Assert.Contains("cannot be replaced", Assert.Throws<RomeException>(() =>
            TokenReplacement.Choose(_lm, request.Prompt, request.Subject, setup.AnswerToken, ["Louvre and the Seine of Paris"], 2, 0)).Message);
    }

    [Fact]
    public void AttributionPatchingIsPatchingToFirstOrder()
    {
        // The estimate is linear in the restored state: restoring a tiny step of the way, ε(r − b), changes the metric
        // by ε times the estimated effect, as finite differences of real patching show.
        var request = Request(new TraceOptions(TraceCorruption.Noise, TraceMetric.LogitDiff)) with { Kinds = [TraceKind.Hidden] };
        var estimated = TraceResult.Collect(new AttributionPatching(_lm).Run(request with { Options = request.Options with { Method = TraceMethod.Attribution } }, CausalTraceTests.Noise));
        var patched = TraceResult.Collect(new CausalTrace(_lm).Run(request, CausalTraceTests.Noise));
        Assert.Equal(patched.Setup.LowScore, estimated.Setup.LowScore, 1e-6);
        const double epsilon = 1e-3;
        var stepped = NaiveTrace.Run(_lm, request, CausalTraceTests.Noise, fraction: epsilon);
        for (int token = patched.Setup.Subject.First; token < patched.Setup.Tokens.Length; token++)
            for (int layer = 0; layer < _lm.Layers; layer++)
            {
                var slope = (stepped.Scores[TraceKind.Hidden][token][layer] - stepped.Setup.LowScore) / epsilon;
                var first = estimated.Scores[TraceKind.Hidden][token][layer] - estimated.Setup.LowScore;
                Assert.True(Math.Abs(slope - first) <= 1e-2 * Math.Max(1, Math.Abs(first)), $"token {token}, layer {layer}: {slope} by finite differences, {first} estimated");
            }
        // Cells before the subject: no change, estimated or patched.
        Assert.All(estimated.Scores[TraceKind.Hidden][0], v => Assert.Equal(estimated.Setup.LowScore, v, 1e-9));
        var agreement = TraceAgreement.Compare(patched, estimated).Single();
        Assert.InRange(agreement.RankCorrelation, -1, 1);
    }

    [Fact]
    public void SpearmanRanksTiesByTheirMean()
    {
        Assert.Equal(1, TraceAgreement.Spearman([1, 2, 3, 4], [10, 20, 30, 40]), 12);
        Assert.Equal(-1, TraceAgreement.Spearman([1, 2, 3, 4], [4, 3, 2, 1]), 12);
        Assert.Equal(0.9486832980505138, TraceAgreement.Spearman([1, 2, 2, 3], [1, 2, 3, 4]), 12);
    }

    [Fact]
    public void OptionsReadTheirNamesAndRefuseOthers()
    {
        Assert.Equal(TraceOptions.Paper, TraceOptions.Parse(null, null, null, null));
        Assert.Equal(new TraceOptions(TraceCorruption.Str, TraceMetric.LogitDiff, TraceDirection.Noise, TraceMethod.Attribution),
            TraceOptions.Parse("str", "logit-diff", "noise", "attribution"));
        Assert.Equal("str, logit-diff, noise, attribution", TraceOptions.Parse("STR", "logit-diff", "noise", "attribution").ToString());
        Assert.Contains("noise or str", Assert.Throws<RomeException>(() => TraceOptions.Parse("blur", null, null, null)).Message);
        Assert.Contains("Severing", Assert.Throws<RomeException>(() =>
            new CausalTrace(_lm).Run(Request(new TraceOptions(Direction: TraceDirection.Noise)) with { Sever = TraceKind.Mlp }, CausalTraceTests.Noise).First()).Message);
    }
}

/// <summary>Does localisation inform editing: the report's figures from cases whose answers are known.</summary>
public class LocalisationReportTests
{
    [Fact]
    public void PeaksAndBestLayersAreComparedPerCase()
    {
        int[] layers = [3, 4, 5];
        var report = new Rome.Model.Evaluation.LocalisationReport(
        [
            new(0, "a", layers, [0.1, 0.5, 0.2], [0.9, 0.5, 0.1]),   // trace peak 4, best edit 3
            new(1, "b", layers, [0.6, 0.1, 0.0], [0.8, 0.7, 0.2]),   // 3, 3
            new(2, "c", layers, [0.0, 0.1, 0.4], [0.1, 0.2, 0.3]),   // 5, 5
        ]);
        Assert.Equal([4, 3, 5], report.Cases.Select(c => c.TracePeak));
        Assert.Equal([3, 3, 5], report.Cases.Select(c => c.BestEdit));
        Assert.Equal(2 / 3.0, report.SameLayerShare, 12);
        Assert.Equal(TraceAgreement.Spearman([4, 3, 5], [3, 3, 5]), report.PeakCorrelation, 12);
        Assert.Equal(1, report.Pairs[(4, 3)]);
        Assert.InRange(report.EffectScoreCorrelation, -1, 1);
    }
}

/// <summary>The options through the CLI: the same grids as the library's, and plain errors.</summary>
public class TraceOptionsCliTests(RandomGpt2Fixture fixture) : IClassFixture<RandomGpt2Fixture>
{
    [Fact]
    public async Task TheCliTracesWithTheOptionsAndComparesAttributionWithPatching()
    {
        var noise = CausalTraceTests.Noise.ToString(System.Globalization.CultureInfo.InvariantCulture);
        const string prompt = "The Eiffel Tower is located in the city of", subject = "Eiffel Tower";
        var (exit, output, error) = await TestPaths.RunCli("trace", "--model", TestPaths.Fixture("gpt2-random"), "--prompt", prompt, "--subject", subject,
            "--samples", "2", "--seed", "3", "--window", "2", "--noise", noise, "--metric", "logit-diff", "--direction", "noise", "--method", "attribution", "--agreement", "--json");
        Assert.True(exit == 0, error);
        using var json = System.Text.Json.JsonDocument.Parse(output);
        var request = new TraceRequest
        {
            Prompt = prompt, Subject = subject, Samples = 2, Seed = 3, Window = 2,
            Options = new TraceOptions(TraceCorruption.Noise, TraceMetric.LogitDiff, TraceDirection.Noise, TraceMethod.Attribution),
        };
        var expected = TraceResult.Collect(new AttributionPatching(fixture.Model).Run(request, CausalTraceTests.Noise));
        // Within float rounding: the CLI's process runs libtorch on more threads than the tests'.
        CausalTraceTests.AssertSameGrid(expected.Scores[TraceKind.Mlp], System.Text.Json.JsonSerializer.Deserialize<double[][]>(json.RootElement.GetProperty("grids").GetProperty("mlp"))!, "mlp");
        Assert.Equal(3, json.RootElement.GetProperty("agreement").GetArrayLength());

        (exit, _, error) = await TestPaths.RunCli("trace", "--model", TestPaths.Fixture("gpt2-random"), "--prompt", prompt, "--subject", subject, "--noise", noise, "--agreement");
        Assert.NotEqual(0, exit);
        Assert.Contains("add --method attribution", error);
        (exit, _, error) = await TestPaths.RunCli("trace", "--model", TestPaths.Fixture("gpt2-random"), "--prompt", prompt, "--subject", subject, "--noise", noise, "--corrupt", "str", "--data", "/nonexistent");
        Assert.NotEqual(0, exit);
        Assert.Contains("Token replacement needs other subjects", error);
    }
}
