using System.Text.Json;
using TorchSharp.PyBridge;
using TorchSharp;
using Xunit.Abstractions;

namespace Rome.Tests;

/// <summary>
/// MEMIT's and AlphaEdit's weight changes against the original code's: kmeng01/memit's <c>execute_memit</c> and
/// jianghoucheng/AlphaEdit's <c>apply_AlphaEdit_to_model</c>, run by <c>tools/fidelity/original_edits.py</c> on the same
/// model, context templates, C (or C = I), P and settings. Each case (Reference/Fidelity/NAME.json) has the original's
/// changes beside it (NAME.safetensors, [in, out] per batch and layer).
/// </summary>
[Trait("Speed", "Slow")] // real z searches on two models
public class FidelityTests(BundledModelFixture bundled, RandomGpt2Fixture random, ITestOutputHelper output) : IClassFixture<BundledModelFixture>, IClassFixture<RandomGpt2Fixture>
{
    private static readonly string Folder = Path.Combine(TestPaths.Root, "tests", "Rome.Tests", "Reference", "Fidelity");

    [Theory]
    [InlineData("memit-rome-knowing")]
    [InlineData("memit-gpt2-random")]
    [InlineData("alphaedit-rome-knowing")]
    [InlineData("alphaedit-gpt2-random")]
    public void WeightChangesMatchTheOriginalCode(string name)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, name + ".json")));
        var root = json.RootElement;
        var lm = root.GetProperty("model").GetString() == "rome-knowing" ? bundled.Model : random.Model;
        var settings = Path.Combine(TestPaths.TempFolder(), MemitHyperParameters.FileName);
        File.WriteAllText(settings, root.GetProperty("hparams").GetRawText());
        var hp = MemitHyperParameters.Load(settings);
        // The original was given the templates this project samples for the model: they must still be these.
        Assert.Equal(root.GetProperty("contextTemplates").EnumerateArray().Select(t => t.GetString()!),
                     ContextTemplates.For(lm, hp.ContextTemplateLengthParams, hp.ContextTemplatePrompts));
        var batches = root.GetProperty("batches").EnumerateArray().Select(b => b.EnumerateArray()
            .Select(r => new EditRequest(r.GetProperty("prompt").GetString()!, r.GetProperty("subject").GetString()!, r.GetProperty("target").GetString()!)).ToList()).ToList();

        var identity = hp.Covariance == "identity";
        Tensor? Covariance(int layer) => identity ? null : bundled.Covariances.Get(lm, layer, hp.CovarianceTokens);
        using var eyeP = identity ? NullSpaceProjection.Of(eye(lm.Config.Inner, dtype: float64), hp.NullspaceThreshold).P : null;
        Tensor Projection(int layer) => eyeP ?? bundled.Covariances.Projection(lm, layer, hp.CovarianceTokens, hp.NullspaceThreshold);

        var reference = Safetensors.LoadStateDict(Path.Combine(Folder, name + ".safetensors"));
        var entries = new List<AppliedEdit>();
        try
        {
            for (int b = 0; b < batches.Count; b++)
            {
                var edit = root.GetProperty("method").GetString() == "memit"
                    ? new MemitEditor(lm, hp).Compute(batches[b], Covariance, entries.SelectMany(e => e.Overlays).ToList())
                    : new AlphaEditEditor(lm, hp).Compute(batches[b], Projection, entries);
                entries.Add(edit);
                for (int i = 0; i < hp.Layers.Length; i++)
                {
                    using var scope = NewDisposeScope();
                    var ours = edit.Overlays[i].Dense().to(float64);
                    var theirs = reference[$"batch{b}.layer{hp.Layers[i]}"].to(float64);
                    var relative = ((ours - theirs).norm() / theirs.norm()).item<double>();
                    output.WriteLine($"{name}: batch {b}, layer {hp.Layers[i]}: relative difference {relative:E2}");
                    Assert.True(relative < 1e-3, $"batch {b}, layer {hp.Layers[i]}: |ΔW − ΔW_original| / |ΔW_original| = {relative:E2}");
                }
            }
        }
        finally
        {
            foreach (var e in entries) e.Dispose();
            foreach (var t in reference.Values) t.Dispose();
        }
    }
}
