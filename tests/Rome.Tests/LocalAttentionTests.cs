using System.Text.Json.Nodes;
using Rome.Model.Tracing;

namespace Rome.Tests;

/// <summary>
/// Local attention in the lower layers (<see cref="ModelConfig.AttentionWindows"/>): the random GPT-2 fixture with
/// windows written into its config, checked by what a window means (tokens out of reach change nothing) and by the
/// fast paths (the KV cache, the packed causal trace) against plain forward passes.
/// </summary>
public sealed class LocalAttentionTests : IDisposable
{
    private readonly List<string> _folders = [];

    public void Dispose()
    {
        foreach (var folder in _folders) Directory.Delete(folder, recursive: true);
    }

    /// <summary>The 3-layer gpt2-random fixture with <paramref name="windows"/> in its config.</summary>
    private LanguageModel Windowed(params int[] windows)
    {
        var folder = TestPaths.TempFolder();
        _folders.Add(folder);
        var fixture = TestPaths.Fixture("gpt2-random");
        foreach (var file in new[] { "model.safetensors", "config.json" }) File.Copy(Path.Combine(fixture, file), Path.Combine(folder, file));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "config.json")))!.AsObject();
        config["rome_attention_windows"] = new JsonArray(windows.Select(w => (JsonNode)w).ToArray());
        File.WriteAllText(Path.Combine(folder, "config.json"), config.ToJsonString());
        return LanguageModel.Load(folder);
    }

    private static float[] LastLogits(LanguageModel lm, long[] ids)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        return lm.Model.Forward(tensor(ids).unsqueeze(0))[0, -1].data<float>().ToArray();
    }

    private static double MaxDifference(float[] a, float[] b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Max();

    [Fact]
    public void TokensBeyondTheWindowsReachChangeNothing()
    {
        // Windows of 2 in all three layers: the last token's logits depend on itself and the three tokens before it.
        using var local = Windowed(2, 2, 2);
        using var global = LanguageModel.Load(TestPaths.Fixture("gpt2-random"));
        long[] ids = [464, 412, 733, 9109, 8765, 318, 5140, 287, 262, 1748], far = (long[])ids.Clone(), near = (long[])ids.Clone();
        far[5] = 1110;   // four tokens before the last
        near[6] = 1110;  // three tokens before the last
        Assert.True(MaxDifference(LastLogits(local, ids), LastLogits(local, far)) < 1e-6);
        Assert.True(MaxDifference(LastLogits(local, ids), LastLogits(local, near)) > 1e-3);
        Assert.True(MaxDifference(LastLogits(global, ids), LastLogits(global, far)) > 1e-3);
    }

    [Fact]
    public void TheKvCacheGivesTheLogitsOfTheWholeSequence()
    {
        using var lm = Windowed(1, 2);
        long[] ids = [464, 412, 733, 9109, 8765, 318, 5140, 287];
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var cache = new KvCache(lm.Layers);
        lm.Model.Forward(tensor(ids[..5]).unsqueeze(0), cache: cache);
        Tensor last = null!;
        foreach (var id in ids[5..]) last = lm.Model.Forward(tensor(new[] { id }).unsqueeze(0), cache: cache);
        Assert.True(MaxDifference(LastLogits(lm, ids), last[0, -1].data<float>().ToArray()) < 1e-5);
    }

    [Theory]
    [InlineData(null)]
    [InlineData(TraceKind.Mlp)]
    public void TheFastTraceEqualsAPlainReference(TraceKind? sever)
    {
        using var lm = Windowed(1, 2);
        var request = new TraceRequest
        {
            Prompt = "The Eiffel Tower is located in the city of", Subject = "Eiffel Tower", Samples = 3, Seed = 3, Window = 2, Sever = sever,
            Kinds = sever is null ? [TraceKind.Hidden, TraceKind.Mlp, TraceKind.Attn] : [TraceKind.Hidden],
        };
        var fast = TraceResult.Collect(new CausalTrace(lm).Run(request, CausalTraceTests.Noise));
        var naive = NaiveTrace.Run(lm, request, CausalTraceTests.Noise);
        foreach (var kind in request.Kinds)
            CausalTraceTests.AssertSameGrid(naive.Scores[kind], fast.Scores[kind], $"{kind}");
    }

    [Fact]
    public void TheWindowsAreWrittenAndReadBack()
    {
        var folder = TestPaths.TempFolder();
        _folders.Add(folder);
        var path = Path.Combine(folder, "config.json");
        ModelConfig.Gpt2(layers: 4, width: 32, heads: 4, positions: 64).Save(path);
        Assert.DoesNotContain("rome_attention_windows", File.ReadAllText(path));
        Assert.Equal("global", ModelConfig.Load(path).AttentionDescription);
        (ModelConfig.Gpt2(layers: 4, width: 32, heads: 4, positions: 64) with { AttentionWindows = [1, 2] }).Save(path);
        var config = ModelConfig.Load(path);
        Assert.Equal([1, 2], config.AttentionWindows);
        Assert.Equal([1, 2, 0, 0], Enumerable.Range(0, 4).Select(config.AttentionWindow));
        Assert.Equal("local in layers 0-1 (windows of 1/2 tokens), global above", config.AttentionDescription);

        foreach (var (bad, says) in new[] { ("[1, -2]", "whole numbers"), ("\"1,2\"", "whole numbers"), ("[1, 1, 1, 1, 1]", "lists 5 layers") })
        {
            var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            json["rome_attention_windows"] = JsonNode.Parse(bad);
            File.WriteAllText(path, json.ToJsonString());
            Assert.Contains(says, Assert.Throws<RomeException>(() => ModelConfig.Load(path)).Message);
        }
    }
}
