using System.Text.Json;
using Rome.Model.Tracing;

namespace Rome.Tests;

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
    public void AOneTokenSubjectRightBeforeTheLastTokenCountsInEveryBucketItIs()
    {
        // "Paris| is": as the notebook does, the one subject token is both first and last subject token, and "is"
        // is both the first subsequent token and the last token.
        var b = AverageIndirectEffect.BucketPositions(new Rome.Model.Modeling.TokenSpan(0, 0), 2);
        Assert.Equal([0], b[0]);
        Assert.Empty(b[1]);
        Assert.Equal([0], b[2]);
        Assert.Equal([1], b[3]);
        Assert.Empty(b[4]);
        Assert.Equal([1], b[5]);
    }

    [Fact]
    public void AveragesTakeEveryRowThenSubtractTheMeanLowScore()
    {
        // Two facts, one layer. Fact A: "Paris| is" (low 0.1); fact B: "New| York| City| is| in| the| capital"
        // (low 0.3), subject 0..2, so one middle row and two further rows.
        TraceResult Fact(int subjectEnd, double low, double[] scores) => new(
            new TraceSetup("", scores.Select(_ => "t").ToArray(), new Rome.Model.Modeling.TokenSpan(0, subjectEnd), 0, "x", 0.9, low, 1, 1, 1, 10, [TraceKind.Mlp]),
            new Dictionary<TraceKind, double[][]> { [TraceKind.Mlp] = scores.Select(v => new[] { v }).ToArray() });
        var a = Fact(0, 0.1, [0.5, 0.7]);
        var b = Fact(2, 0.3, [0.2, 0.4, 0.6, 0.8, 0.3, 0.9, 0.5]);
        var result = AverageIndirectEffect.Average([a, b], 10);
        var mlp = result.Kinds[TraceKind.Mlp];
        Assert.Equal(0.2, result.MeanLowScore, 12);
        Assert.Equal((0.5 + 0.2) / 2 - 0.2, mlp[0].Mean[0], 12);           // first subject token
        Assert.Equal(0.4 - 0.2, mlp[1].Mean[0], 12);                       // middle: B's one row only
        Assert.Equal((0.5 + 0.6) / 2 - 0.2, mlp[2].Mean[0], 12);           // last subject token: A's only token too
        Assert.Equal((0.7 + 0.8) / 2 - 0.2, mlp[3].Mean[0], 12);           // first subsequent: A's last token too
        Assert.Equal((0.3 + 0.9) / 2 - 0.2, mlp[4].Mean[0], 12);           // further: B's two rows, not B's mean
        Assert.Equal(2, mlp[4].Count);
        Assert.Equal((0.7 + 0.5) / 2 - 0.2, mlp[5].Mean[0], 12);           // last token
    }
}
