namespace Rome.Tests;

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
