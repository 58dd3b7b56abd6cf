using System.Text.Json;

namespace Rome.Tests;

/// <summary>Our GPT-2 against logits from an independent numpy implementation of the same checkpoint.</summary>
public class GoldenModelTests
{
    private const double Tolerance = 1e-3;
    private static readonly string Folder = TestPaths.Fixture("gpt2-random");

    public static IEnumerable<object[]> Cases()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, "expected.json")));
        var count = doc.RootElement.GetProperty("cases").GetArrayLength();
        return Enumerable.Range(0, count).Select(i => new object[] { i });
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void LogitsAndHiddenStatesMatchTheReference(int index)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, "expected.json")));
        var c = doc.RootElement.GetProperty("cases")[index];
        var ids = c.GetProperty("input_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();

        using var lm = LanguageModel.Load(Folder);
        using var scope = NewDisposeScope();
        var hidden = new Tensor[lm.Layers];
        var iv = new Interventions();
        for (int l = 0; l < lm.Layers; l++)
        {
            var layer = l;
            iv.Capture(HookPoint.Resid(l), t => hidden[layer] = t);
        }
        var logits = lm.Model.Forward(lm.Ids(ids), iv)[0];

        Assert.Equal(Ints(c, "argmax_per_position"), logits.argmax(-1).data<long>().Select(i => (int)i).ToArray());
        AssertClose(Floats(c, "logsumexp_per_position"), logits.logsumexp(-1).data<float>().ToArray());
        AssertClose(Floats(c, "last_logits_first16"), logits[-1, ..16].data<float>().ToArray());
        var expectedHidden = c.GetProperty("hidden_after_block_last_token_first8").EnumerateArray().ToArray();
        for (int l = 0; l < lm.Layers; l++)
            AssertClose(expectedHidden[l].EnumerateArray().Select(e => e.GetSingle()).ToArray(), hidden[l][0, -1, ..8].data<float>().ToArray());
    }

    [Fact]
    public void PredictReportsTheSameNumbers()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, "expected.json")));
        var c = doc.RootElement.GetProperty("cases")[0];
        var ids = Ints(c, "input_ids");
        using var lm = LanguageModel.Load(Folder);
        var prediction = lm.Predict(ids, top: 3);
        Assert.Equal(Ints(c, "argmax_per_position"), prediction.ArgmaxPerPosition);
        AssertClose(Floats(c, "logsumexp_per_position"), prediction.LogSumExpPerPosition);
        Assert.Equal(prediction.ArgmaxPerPosition[^1], prediction.Top[0].Id);
        Assert.True(prediction.Top[0].Probability >= prediction.Top[1].Probability);
    }

    internal static int[] Ints(JsonElement e, string name) => e.GetProperty(name).EnumerateArray().Select(x => x.GetInt32()).ToArray();
    internal static float[] Floats(JsonElement e, string name) => e.GetProperty(name).EnumerateArray().Select(x => x.GetSingle()).ToArray();

    internal static void AssertClose(float[] expected, float[] actual, double tolerance = Tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance, $"index {i}: expected {expected[i]}, got {actual[i]}");
    }
}
