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

    public static Gpt2Config Load(string path)
    {
        JsonObject json;
        try { json = JsonNode.Parse(File.ReadAllText(path))?.AsObject() ?? throw new JsonException("empty"); }
        catch (JsonException ex) { throw new RomeException($"{path} is not valid JSON: {ex.Message}"); }
        catch (InvalidOperationException) { throw new RomeException($"{path} must hold one JSON object."); }

        var type = json["model_type"] is JsonValue t && t.TryGetValue<string>(out var name) ? name : null;
        if (type != "gpt2")
            throw new RomeException($"{path}: model_type is '{type ?? "missing"}', but only 'gpt2' models are supported.");
        var act = json["activation_function"] is JsonValue a && a.TryGetValue<string>(out var fn) ? fn : "gelu_new";
        if (act is not ("gelu_new" or "gelu_pytorch_tanh"))
            throw new RomeException($"{path}: activation_function '{act}' is not supported (GPT-2 uses gelu_new).");

        int Int(string key, int fallback)
        {
            if (json[key] is null) return fallback;
            return json[key] is JsonValue v && v.TryGetValue<int>(out var i) ? i
                : throw new RomeException($"{path}: '{key}' must be a whole number.");
        }
        var embd = Int("n_embd", 768);
        var config = new Gpt2Config
        {
            VocabSize = Int("vocab_size", 50257),
            Positions = Int("n_positions", 1024),
            Embd = embd,
            Layers = Int("n_layer", 12),
            Heads = Int("n_head", 12),
            Inner = Int("n_inner", 4 * embd),
            LayerNormEpsilon = json["layer_norm_epsilon"] is JsonValue e && e.TryGetValue<double>(out var eps) && eps > 0 && eps < 1 ? eps
                : json["layer_norm_epsilon"] is null ? 1e-5 : throw new RomeException($"{path}: 'layer_norm_epsilon' must be a small positive number."),
            EosTokenId = Int("eos_token_id", 50256),
        };
        if (config.Heads < 1 || config.Embd < 1 || config.Positions < 1 || config.Inner < 1 || config.Embd % config.Heads != 0 || config.Layers < 1 || config.VocabSize < 1)
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
