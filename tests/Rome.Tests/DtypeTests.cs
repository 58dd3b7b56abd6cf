namespace Rome.Tests;

[Trait("Speed", "Slow")] // traces and edits in three dtypes
public class DtypeTests
{
    [Fact]
    public void LoadsInFloat16CloseToFloat32_AndRejectsUnknownTypes()
    {
        using var full = LanguageModel.Load(TestPaths.Fixture("gpt2-random"));
        using var half = LanguageModel.Load(TestPaths.Fixture("gpt2-random"), dtype: "float16");
        int[] ids = [464, 3139, 286, 4881, 318];
        using var a = full.NextTokenLogProbs(ids);
        using var b = half.NextTokenLogProbs(ids);
        Assert.Equal(TorchSharp.torch.ScalarType.Float16, half.Model.TokenEmbedding.dtype);
        var error = (a - b).abs().max().item<float>();
        Assert.True(error < 0.05, $"float16 log-probabilities differ by {error}");
        Assert.Throws<Rome.Model.RomeException>(() => LanguageModel.Load(TestPaths.Fixture("gpt2-random"), dtype: "int8"));
    }

    [Fact]
    public void AHalfPrecisionModelTracesAndEditsLikeTheFullOne()
    {
        using var full = LanguageModel.Load(TestPaths.BundledModel);
        using var half = LanguageModel.Load(TestPaths.BundledModel, dtype: "bfloat16");
        var request = new Rome.Model.Tracing.TraceRequest { Prompt = "Nintendo is located in", Subject = "Nintendo", Kinds = [Rome.Model.Tracing.TraceKind.Mlp] };
        var a = Rome.Model.Tracing.TraceResult.Collect(new Rome.Model.Tracing.CausalTrace(full).Run(request, 0.3));
        var b = Rome.Model.Tracing.TraceResult.Collect(new Rome.Model.Tracing.CausalTrace(half).Run(request, 0.3));
        Assert.Equal(a.Setup.AnswerToken, b.Setup.AnswerToken);
        var diff = a.Scores[Rome.Model.Tracing.TraceKind.Mlp].Zip(b.Scores[Rome.Model.Tracing.TraceKind.Mlp]).SelectMany(p => p.First.Zip(p.Second, (x, y) => Math.Abs(x - y))).Max();
        Assert.True(diff < 0.05, $"bfloat16 trace differs by {diff}");

        var hp = Rome.Model.Editing.RomeHyperParameters.Load(TestPaths.BundledHyperParameters) with { Covariance = "identity" };
        var edit = new Rome.Model.Editing.EditRequest("{} is located in", "Nintendo", "Germany");
        using var applied = new Rome.Model.Editing.RomeEditor(half, hp).Compute(edit, null);
        Assert.True(applied.TargetProbability > 0.3, $"the bfloat16 edit reached only {applied.TargetProbability:P1}");
    }
}
