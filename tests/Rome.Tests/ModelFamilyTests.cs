using System.Text.Json;

namespace Rome.Tests;

/// <summary>
/// Every family against float64 logits of the same random checkpoint, from a reference written from the Hugging Face
/// modeling code and checked against it (../shared/data/README.md says what each family must get right).
/// </summary>
public class ModelFamilyTests
{
    public static readonly string[] Families = ["gptj-random", "gpt-neox-random", "gpt-neox-sequential-random", "llama-random", "llama-tied-random", "llama-sharded-random", "qwen2-random"];

    /// <summary>A float32 model of this size reproduces float64 logits to about 1e-6; 1e-4 is the issue's bound.</summary>
    private const double Tolerance = 1e-4;

    public static IEnumerable<object[]> FixtureCases() =>
        from fixture in Families
        from index in Enumerable.Range(0, Expected(fixture).GetProperty("cases").GetArrayLength())
        select new object[] { fixture, index };

    public static IEnumerable<object[]> Fixtures() => Families.Select(f => new object[] { f });

    [Theory]
    [MemberData(nameof(FixtureCases))]
    public void LogitsMatchTheReference(string fixture, int index)
    {
        var c = Expected(fixture).GetProperty("cases")[index];
        using var model = Checkpoint.Load(TestPaths.Fixture(fixture));
        var logits = Logits(model, Ids(c));

        var expected = c.GetProperty("logits").EnumerateArray().Select(row => row.EnumerateArray().Select(v => v.GetDouble()).ToArray()).ToArray();
        var worst = 0.0;
        for (int t = 0; t < expected.Length; t++)
            for (int v = 0; v < expected[t].Length; v++)
                worst = Math.Max(worst, Math.Abs(expected[t][v] - logits[t][v]));
        Assert.True(worst <= Tolerance, $"{fixture} case {index}: logits differ by up to {worst:E2}");
        var argmax = c.GetProperty("argmax").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.Equal(argmax, logits.Select(row => Array.IndexOf(row, row.Max())).ToArray());
    }

    [Fact]
    public void ConfigsNameTheirFamily()
    {
        Assert.Equal(ModelFamily.GptJ, ConfigOf("gptj-random").Family);
        Assert.Equal(Residual.ParallelSharedNorm, ConfigOf("gptj-random").Residual);
        Assert.Equal(Residual.Parallel, ConfigOf("gpt-neox-random").Residual);
        Assert.Equal(Residual.Sequential, ConfigOf("gpt-neox-sequential-random").Residual);
        Assert.Equal(16 / 4, ConfigOf("gpt-neox-random").RotaryDims); // rotary_pct 0.25 of head size 16
        Assert.Equal(2, ConfigOf("llama-random").KvHeads);
        Assert.True(ConfigOf("llama-tied-random").TiedEmbeddings);
        Assert.True(ConfigOf("qwen2-random").QkvBias);
        Assert.False(ConfigOf("qwen2-random").AttnOutBias);
    }

    /// <summary>
    /// Half-precision copies of a checkpoint, as real ones come, load into float32 and agree with the float32 model to
    /// what rounding each weight allows: float16 keeps 11 significant bits (relative error ≤ 2⁻¹¹), bfloat16 8
    /// (≤ 2⁻⁸). A logit is a sum over 64-wide products through two blocks, so its error is a few times the weights'
    /// relative error times the logits' scale; the bounds below are 4x that, and argmax is checked where the
    /// runner-up is not within that bound.
    /// </summary>
    [Theory]
    [InlineData("F16", 4 * 8.0 / 2048)]
    [InlineData("BF16", 4 * 8.0 / 256)]
    public void HalfPrecisionCopiesLoadAndAgree(string dtype, double bound)
    {
        const string fixture = "llama-random";
        var folder = TestPaths.TempFolder();
        try
        {
            File.Copy(Path.Combine(TestPaths.Fixture(fixture), "config.json"), Path.Combine(folder, "config.json"));
            using (var original = Checkpoint.Load(TestPaths.Fixture(fixture)))
            {
                var tensors = Checkpoint.ReadTensorsChecked(Path.Combine(TestPaths.Fixture(fixture), Checkpoint.WeightsFile), "fixture").Tensors;
                Checkpoint.WriteSafetensors(Path.Combine(folder, Checkpoint.WeightsFile), tensors.Select(kv => (kv.Key, kv.Value)), dtype: dtype);
                foreach (var t in tensors.Values) t.Dispose();
            }
            Assert.Contains($"\"{dtype}\"", File.ReadAllText(Path.Combine(folder, Checkpoint.WeightsFile)).Substring(0, 400));

            var c = Expected(fixture).GetProperty("cases")[2];
            using var full = Checkpoint.Load(TestPaths.Fixture(fixture));
            using var half = Checkpoint.Load(folder);
            var (a, b) = (Logits(full, Ids(c)), Logits(half, Ids(c)));
            var scale = a.SelectMany(r => r).Max(Math.Abs);
            var worst = a.Zip(b).SelectMany(p => p.First.Zip(p.Second, (x, y) => Math.Abs(x - y))).Max();
            Assert.True(worst > 0, "the copy should hold rounded weights");
            Assert.True(worst <= bound * scale, $"{dtype}: logits differ by {worst:E2}, bound {bound * scale:E2}");
            for (int t = 0; t < a.Length; t++)
            {
                var sorted = a[t].OrderDescending().ToArray();
                if (sorted[0] - sorted[1] > 2 * bound * scale)
                    Assert.Equal(Array.IndexOf(a[t], sorted[0]), Array.IndexOf(b[t], b[t].Max()));
            }
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    [Fact]
    public void UnsupportedTypesAndRopeScalingAreRefusedByName()
    {
        var folder = TestPaths.TempFolder();
        try
        {
            var config = File.ReadAllText(Path.Combine(TestPaths.Fixture("llama-random"), "config.json"));
            File.WriteAllText(Path.Combine(folder, "config.json"), config.Replace("\"model_type\": \"llama\"", "\"model_type\": \"mamba\""));
            var e = Assert.Throws<RomeException>(() => ModelConfig.Load(Path.Combine(folder, "config.json")));
            Assert.Contains("'mamba' is not supported", e.Message);
            Assert.Contains("qwen2", e.Message);

            File.WriteAllText(Path.Combine(folder, "config.json"), config.Replace("\"rope_scaling\": null", "\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0}"));
            e = Assert.Throws<RomeException>(() => ModelConfig.Load(Path.Combine(folder, "config.json")));
            Assert.Contains("'yarn' is not implemented", e.Message);
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    [Fact]
    public void AShardMissingFromItsIndexIsNamed()
    {
        var folder = TestPaths.TempFolder();
        try
        {
            foreach (var file in Directory.GetFiles(TestPaths.Fixture("llama-sharded-random")).Where(f => !f.EndsWith("00002-of-00002.safetensors")))
                File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
            var e = Assert.Throws<RomeException>(() => Checkpoint.Load(folder));
            Assert.Contains("model-00002-of-00002.safetensors", e.Message);
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    /// <summary>
    /// On every family (with a byte tokenizer made in the test): the fast trace equals the plain one-pass-per-cell
    /// reference, so packed runs and the cached corrupted prefix give each token its true rotary position, and
    /// parallel blocks restore MLP and attention outputs as the window formula says; severing too.
    /// </summary>
    [Theory]
    [MemberData(nameof(Fixtures))]
    public void TheFastTraceEqualsThePlainReference(string fixture) => FastTraceEqualsReference(fixture, sentencePiece: false);

    /// <summary>Llama with a SentencePiece tokenizer ("▁" marks, byte fallback, &lt;s&gt; before the prompt): trace and edit.</summary>
    [Fact]
    public void ALlamaWithASentencePieceTokenizerTracesAndEdits()
    {
        FastTraceEqualsReference("llama-random", sentencePiece: true);
        RomeEditRaisesTarget("llama-random", sentencePiece: true);
    }

    private static void FastTraceEqualsReference(string fixture, bool sentencePiece)
    {
        using var lm = WithTokenizer(fixture, sentencePiece, out var folder);
        try
        {
            var request = new Rome.Model.Tracing.TraceRequest { Prompt = "The Eiffel Tower is in", Subject = "Eiffel Tower", Samples = 3, Seed = 3, Window = 2 };
            var fast = Rome.Model.Tracing.TraceResult.Collect(new Rome.Model.Tracing.CausalTrace(lm).Run(request, CausalTraceTests.Noise));
            var small = Rome.Model.Tracing.TraceResult.Collect(new Rome.Model.Tracing.CausalTrace(lm, batchBytes: 4096).Run(request, CausalTraceTests.Noise));
            var naive = NaiveTrace.Run(lm, request, CausalTraceTests.Noise);
            foreach (var kind in request.Kinds)
            {
                CausalTraceTests.AssertSameGrid(naive.Scores[kind], fast.Scores[kind], $"{fixture} {kind}");
                CausalTraceTests.AssertSameGrid(naive.Scores[kind], small.Scores[kind], $"{fixture} {kind} in small batches");
            }
            var severed = request with { Kinds = [Rome.Model.Tracing.TraceKind.Hidden], Sever = Rome.Model.Tracing.TraceKind.Mlp };
            var fastSevered = Rome.Model.Tracing.TraceResult.Collect(new Rome.Model.Tracing.CausalTrace(lm).Run(severed, CausalTraceTests.Noise));
            CausalTraceTests.AssertSameGrid(NaiveTrace.Run(lm, severed, CausalTraceTests.Noise).Scores[Rome.Model.Tracing.TraceKind.Hidden],
                fastSevered.Scores[Rome.Model.Tracing.TraceKind.Hidden], $"{fixture} severed");
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    /// <summary>On every family a ROME edit (at the MLP's output projection) raises its target, and undo restores the exact logits.</summary>
    [Theory]
    [MemberData(nameof(Fixtures))]
    public void ARomeEditRaisesItsTargetAndUndoRestoresTheLogits(string fixture) => RomeEditRaisesTarget(fixture, sentencePiece: false);

    private static void RomeEditRaisesTarget(string fixture, bool sentencePiece)
    {
        using var lm = WithTokenizer(fixture, sentencePiece, out var folder);
        try
        {
            var hp = new Rome.Model.Editing.RomeHyperParameters { Layer = 0, Steps = 30, ContextTemplateLengthParams = [[5, 2]] };
            var request = new Rome.Model.Editing.EditRequest("{} is in", "Tower", "Rome");
            var prompt = lm.Encode(request.Filled);
            var target = lm.Tokenizer.Encode(" Rome");
            double TargetLogProb(Interventions? iv)
            {
                using var scope = NewDisposeScope();
                var logits = lm.Model.Forward(lm.Ids([.. prompt, .. target[..^1]]), iv)[0].log_softmax(-1);
                return target.Select((token, i) => logits[prompt.Length - 1 + i, token].item<float>()).Sum();
            }
            using var before = lm.NextTokenLogProbs(prompt);
            var original = TargetLogProb(null);
            using var session = new Rome.Model.Editing.EditSession(lm);
            session.Apply(new Rome.Model.Editing.RomeEditor(lm, hp), request, covariance: null);
            var edited = TargetLogProb(session.Interventions());
            Assert.True(edited > original + 1.0, $"{fixture}: log p(\" Rome\") went from {original:F2} to {edited:F2}");

            session.Undo();
            using var undone = lm.NextTokenLogProbs(prompt, session.Interventions());
            Assert.True(undone.eq(before).all().item<bool>(), $"{fixture}: undo must restore the exact logits");
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    /// <summary>A model trained elsewhere has no facts.json: C is estimated on ParaRel's sentences, or the error says what to give.</summary>
    [Fact]
    public void AModelWithoutAFactManifestEstimatesCOnParaRel()
    {
        using var lm = WithTokenizer("qwen2-random", sentencePiece: false, out var folder);
        try
        {
            var corpus = Rome.Model.Editing.CovarianceStatistics.DefaultCorpus(lm, TestPaths.Data).Take(500).ToList();
            Assert.Equal(500, corpus.Count);
            using var c = Rome.Model.Editing.CovarianceStatistics.Compute(lm, 1, corpus, 2000);
            Assert.Equal([lm.Config.Inner, lm.Config.Inner], c.shape);
            Assert.True(linalg.eigvalsh(c).min().item<double>() > -1e-9, "C is a second moment: positive semi-definite");
            var e = Assert.Throws<RomeException>(() => Rome.Model.Editing.CovarianceStatistics.DefaultCorpus(lm));
            Assert.Contains("--corpus", e.Message);
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    /// <summary>The fixture in a temporary folder with a tokenizer.json of the 256 bytes, or a SentencePiece one.</summary>
    private static LanguageModel WithTokenizer(string fixture, bool sentencePiece, out string folder)
    {
        folder = TestPaths.TempFolder();
        foreach (var file in Directory.GetFiles(TestPaths.Fixture(fixture)))
            File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
        if (sentencePiece) TestTokenizers.WriteSentencePiece(folder, "▁E", "if", "▁T", "ow", "er", "▁R", "om", "▁i", "▁is", "▁in");
        else TestTokenizers.WriteBytes(folder);
        return LanguageModel.Load(folder);
    }

    internal static JsonElement Expected(string fixture)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.Fixture(fixture), "expected.json")));
        return doc.RootElement.Clone();
    }

    private static ModelConfig ConfigOf(string fixture) => ModelConfig.Load(Path.Combine(TestPaths.Fixture(fixture), "config.json"));

    internal static long[] Ids(JsonElement c) => c.GetProperty("input_ids").EnumerateArray().Select(e => e.GetInt64()).ToArray();

    private static float[][] Logits(DecoderModel model, long[] ids)
    {
        using var scope = NewDisposeScope();
        var logits = model.Forward(tensor(ids).unsqueeze(0))[0];
        return Enumerable.Range(0, ids.Length).Select(t => logits[t].data<float>().ToArray()).ToArray();
    }
}
