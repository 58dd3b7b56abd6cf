using System.Text.Json;
using System.Text.Json.Nodes;

namespace Rome.Model.Modeling;

/// <summary>The GPT-2 hyper-parameters, read from and written to a Hugging Face <c>config.json</c>.</summary>
public sealed record Gpt2Config
{
    public int VocabSize { get; init; } = 50257;
    public int Positions { get; init; } = 1024;
    public int Embd { get; init; } = 768;
    public int Layers { get; init; } = 12;
    public int Heads { get; init; } = 12;
    /// <summary>Width of the MLP hidden layer (Hugging Face's <c>n_inner</c>; null there means 4 x width).</summary>
    public int Inner { get; init; } = 3072;
    public double LayerNormEpsilon { get; init; } = 1e-5;
    public int EosTokenId { get; init; } = 50256;

    public int HeadDim => Embd / Heads;

    public static Gpt2Config Load(string path)
    {
        JsonObject json;
        try { json = JsonNode.Parse(File.ReadAllText(path))?.AsObject() ?? throw new JsonException("empty"); }
        catch (JsonException ex) { throw new RomeException($"{path} is not valid JSON: {ex.Message}"); }

        var type = (string?)json["model_type"];
        if (type != "gpt2")
            throw new RomeException($"{path}: model_type is '{type ?? "missing"}', but only 'gpt2' models are supported.");
        var act = (string?)json["activation_function"] ?? "gelu_new";
        if (act is not ("gelu_new" or "gelu_pytorch_tanh"))
            throw new RomeException($"{path}: activation_function '{act}' is not supported (GPT-2 uses gelu_new).");

        int Int(string key, int fallback) => json[key] is JsonValue v ? v.GetValue<int>() : fallback;
        var embd = Int("n_embd", 768);
        var config = new Gpt2Config
        {
            VocabSize = Int("vocab_size", 50257),
            Positions = Int("n_positions", 1024),
            Embd = embd,
            Layers = Int("n_layer", 12),
            Heads = Int("n_head", 12),
            Inner = Int("n_inner", 4 * embd),
            LayerNormEpsilon = json["layer_norm_epsilon"] is JsonValue e ? e.GetValue<double>() : 1e-5,
            EosTokenId = Int("eos_token_id", 50256),
        };
        if (config.Embd % config.Heads != 0 || config.Layers < 1 || config.VocabSize < 1)
            throw new RomeException($"{path}: inconsistent sizes (n_embd {config.Embd}, n_head {config.Heads}, n_layer {config.Layers}).");
        return config;
    }

    public void Save(string path)
    {
        var json = new JsonObject
        {
            ["model_type"] = "gpt2",
            ["architectures"] = new JsonArray("GPT2LMHeadModel"),
            ["vocab_size"] = VocabSize,
            ["n_positions"] = Positions,
            ["n_ctx"] = Positions,
            ["n_embd"] = Embd,
            ["n_layer"] = Layers,
            ["n_head"] = Heads,
            ["n_inner"] = Inner,
            ["activation_function"] = "gelu_new",
            ["layer_norm_epsilon"] = LayerNormEpsilon,
            ["bos_token_id"] = EosTokenId,
            ["eos_token_id"] = EosTokenId,
            ["tie_word_embeddings"] = true,
        };
        File.WriteAllText(path, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }
}
