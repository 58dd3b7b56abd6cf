using Rome.Model;
using Rome.Model.Modeling;
using static TorchSharp.torch;

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

/// <summary>
/// Checkpoint folders are user input too (<c>--model</c>, <c>Rome:ModelPath</c>): every malformed folder ends in a
/// clear <see cref="RomeException"/>, and nothing the files claim reaches libtorch unchecked (a size it cannot
/// allocate, a byte range that does not hold the shape).
/// </summary>
public class CheckpointFuzzTests
{
    public static IEnumerable<object[]> Cases() => new[]
    {
        "config is an array", "config is empty", "n_head is zero", "n_embd is text", "n_layer is negative", "epsilon is text",
        "a billion-token vocabulary", "more layers than the weights", "model_type is a number",
        "a shape larger than its bytes", "a shape smaller than its bytes", "a shape that overflows", "negative offsets", "random bytes", "header only",
    }.Select(c => new object[] { c });

    [Theory]
    [MemberData(nameof(Cases))]
    public void AMalformedCheckpointIsRefusedWithAMessage(string name)
    {
        var folder = CheckpointTests.CopyFixture();
        string config = Path.Combine(folder, "config.json"), weights = Path.Combine(folder, "model.safetensors");
        void Config(string from, string to)
        {
            var text = File.ReadAllText(config);
            Assert.Contains(from, text);
            File.WriteAllText(config, text.Replace(from, to));
        }
        void Header(Func<string, string> change)
        {
            var bytes = File.ReadAllBytes(weights);
            var length = (int)BitConverter.ToUInt64(bytes, 0);
            var text = System.Text.Encoding.UTF8.GetString(bytes, 8, length);
            var header = System.Text.Encoding.UTF8.GetBytes(change(text));
            Assert.NotEqual(text, System.Text.Encoding.UTF8.GetString(header));
            File.WriteAllBytes(weights, [.. BitConverter.GetBytes((ulong)header.Length), .. header, .. bytes[(8 + length)..]]);
        }
        switch (name)
        {
            case "config is an array": File.WriteAllText(config, "[1, 2]"); break;
            case "config is empty": File.WriteAllText(config, ""); break;
            case "n_head is zero": Config("\"n_head\": 4", "\"n_head\": 0"); break;
            case "n_embd is text": Config("\"n_embd\": 48", "\"n_embd\": \"48\""); break;
            case "n_layer is negative": Config("\"n_layer\": 3", "\"n_layer\": -3"); break;
            case "epsilon is text": Config("\"layer_norm_epsilon\": 1e-05", "\"layer_norm_epsilon\": \"tiny\""); break;
            case "a billion-token vocabulary": Config("\"vocab_size\": 50257", "\"vocab_size\": 1000000000"); break;
            case "more layers than the weights": Config("\"n_layer\": 3", "\"n_layer\": 300"); break;
            case "model_type is a number": Config("\"model_type\": \"gpt2\"", "\"model_type\": 2"); break;
            case "a shape larger than its bytes": Header(h => h.Replace("[50257,48]", "[50257,49]")); break;
            case "a shape smaller than its bytes": Header(h => h.Replace("[64,48]", "[60,48]")); break;
            case "a shape that overflows": Header(h => h.Replace("\"shape\":[64,48]", "\"shape\":[4611686018427387904,4]")); break;
            case "negative offsets": Header(h => h.Replace("\"data_offsets\":[0,9649344]", "\"data_offsets\":[-4,964934]")); break;
            case "random bytes": { var b = new byte[4096]; new Random(3).NextBytes(b); File.WriteAllBytes(weights, b); break; }
            case "header only": { var b = File.ReadAllBytes(weights); File.WriteAllBytes(weights, b[..(8 + (int)BitConverter.ToUInt64(b, 0))]); break; }
            default: throw new ArgumentException(name);
        }
        var error = Assert.Throws<RomeException>(() => LanguageModel.Load(folder));
        Assert.True(error.Message.Length < 400, error.Message);
    }
}
