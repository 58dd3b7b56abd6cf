namespace Rome.Tests;

public class CheckpointTests
{
    private static readonly string Fixture = TestPaths.Fixture("gpt2-random");
    private static readonly int[] Ids = [464, 3139, 286, 4881, 318];

    [Fact]
    public void SaveThenLoadGivesIdenticalLogits()
    {
        using var lm = LanguageModel.Load(Fixture);
        var folder = TestPaths.TempFolder();
        Checkpoint.Save(lm.Model, folder);
        using var again = LanguageModel.Load(folder);
        using var scope = NewDisposeScope();
        var a = lm.Model.Forward(lm.Ids(Ids));
        var b = again.Model.Forward(again.Ids(Ids));
        Assert.True(a.eq(b).all().item<bool>(), "logits differ after a save/load round trip");
        Assert.Equal(lm.Fingerprint.Length, again.Fingerprint.Length);
        Assert.Contains("\"format\":\"pt\"", System.Text.Encoding.UTF8.GetString(File.ReadAllBytes(Path.Combine(folder, "model.safetensors")).AsSpan(8, 200)));
    }

    [Fact]
    public void AFloat16ExportIsHalfTheSize_AndLoadsBackToTheSameWeightsRoundedToFloat16()
    {
        using var lm = LanguageModel.Load(Fixture);
        var folder = TestPaths.TempFolder();
        using (var session = new Rome.Model.Editing.EditSession(lm)) session.Bake(folder, float16: true);
        var bytes = File.ReadAllBytes(Path.Combine(folder, "model.safetensors"));
        var header = System.Text.Encoding.UTF8.GetString(bytes.AsSpan(8, (int)BitConverter.ToUInt64(bytes, 0)));
        Assert.Contains("\"F16\"", header);
        Assert.DoesNotContain("\"F32\"", header);
        var full = new FileInfo(Path.Combine(Fixture, "model.safetensors")).Length;
        Assert.InRange(new FileInfo(Path.Combine(folder, "model.safetensors")).Length, full * 0.45, full * 0.55);

        // Every weight comes back exactly as float16 rounds it, so the logits are those of the rounded model.
        using var again = LanguageModel.Load(folder);
        var original = lm.Model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in again.Model.named_parameters())
            Assert.True(p.eq(original[name].to(float16).to(float32)).all().item<bool>(), name);
    }

    [Fact]
    public void LoadsKeysWithTheTransformerPrefixAndIgnoresBuffersAndHead()
    {
        using var lm = LanguageModel.Load(Fixture);
        var folder = TestPaths.TempFolder();
        File.Copy(Path.Combine(Fixture, "config.json"), Path.Combine(folder, "config.json"));
        using var scope = NewDisposeScope();
        var tensors = lm.Model.named_parameters().Select(p => ("transformer." + p.name, (Tensor)p.parameter)).ToList();
        tensors.Add(("lm_head.weight", lm.Model.TokenEmbedding));
        tensors.Add(("transformer.h.0.attn.bias", ones(1, 1, 64, 64)));
        tensors.Add(("transformer.h.0.attn.masked_bias", tensor(-1e4f)));
        Checkpoint.WriteSafetensors(Path.Combine(folder, "model.safetensors"), tensors);
        using var again = LanguageModel.Load(folder);
        Assert.True(lm.Model.Forward(lm.Ids(Ids)).eq(again.Model.Forward(again.Ids(Ids))).all().item<bool>());
    }

    [Fact]
    public void MissingFolderOrFilesAreNamed()
    {
        Assert.Contains("does not exist", Assert.Throws<RomeException>(() => LanguageModel.Load("/nonexistent/model")).Message);
        var folder = TestPaths.TempFolder();
        Assert.Contains("config.json", Assert.Throws<RomeException>(() => LanguageModel.Load(folder)).Message);
        File.Copy(Path.Combine(Fixture, "config.json"), Path.Combine(folder, "config.json"));
        Assert.Contains("model.safetensors", Assert.Throws<RomeException>(() => LanguageModel.Load(folder)).Message);
    }

    [Fact]
    public void TruncatedSafetensorsIsReportedAsTruncated()
    {
        var folder = CopyFixture();
        var path = Path.Combine(folder, "model.safetensors");
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        Assert.Contains("truncated", Assert.Throws<RomeException>(() => LanguageModel.Load(folder)).Message);
        File.WriteAllBytes(path, bytes[..4]);
        Assert.Contains("truncated", Assert.Throws<RomeException>(() => LanguageModel.Load(folder)).Message);
        File.WriteAllBytes(path, [.. BitConverter.GetBytes(10L), .. "{not json}"u8.ToArray()]);
        Assert.Contains("corrupt", Assert.Throws<RomeException>(() => LanguageModel.Load(folder)).Message);
    }

    [Fact]
    public void WrongShapesAreNamed()
    {
        var folder = CopyFixture();
        var config = Path.Combine(folder, "config.json");
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"n_embd\": 48", "\"n_embd\": 64"));
        var e = Assert.Throws<RomeException>(() => LanguageModel.Load(folder));
        Assert.Contains("shape", e.Message);
    }

    [Fact]
    public void UnknownModelTypeIsNamed()
    {
        var folder = CopyFixture();
        var config = Path.Combine(folder, "config.json");
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"gpt2\"", "\"llama\""));
        Assert.Contains("llama", Assert.Throws<RomeException>(() => LanguageModel.Load(folder)).Message);
        File.WriteAllText(config, "{ nope");
        Assert.Contains("not valid JSON", Assert.Throws<RomeException>(() => LanguageModel.Load(folder)).Message);
    }

    internal static string CopyFixture()
    {
        var folder = TestPaths.TempFolder();
        foreach (var f in new[] { "config.json", "model.safetensors" })
            File.Copy(Path.Combine(Fixture, f), Path.Combine(folder, f));
        return folder;
    }
}
