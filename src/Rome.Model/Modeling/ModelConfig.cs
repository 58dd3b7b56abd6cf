using System.Text.Json;
using System.Text.Json.Nodes;

namespace Rome.Model.Modeling;

/// <summary>The model families <see cref="DecoderModel"/> runs, by their Hugging Face <c>model_type</c>.</summary>
public enum ModelFamily { Gpt2, GptJ, GptNeoX, Llama, Qwen2 }

/// <summary>How a block adds its attention and MLP outputs to the residual stream.</summary>
public enum Residual
{
    /// <summary><c>x += attn(ln_1 x); x += mlp(ln_2 x)</c> (GPT-2, Llama, Qwen2, NeoX without parallel residual).</summary>
    Sequential,
    /// <summary><c>x += attn(ln_1 x) + mlp(ln_2 x)</c> (GPT-NeoX/Pythia).</summary>
    Parallel,
    /// <summary><c>x += attn(ln_1 x) + mlp(ln_1 x)</c>: one norm feeds both (GPT-J).</summary>
    ParallelSharedNorm,
}

/// <summary>
/// A decoder's hyper-parameters, read from a Hugging Face <c>config.json</c> of any supported family (and written
/// back for GPT-2, the family <c>rome train</c> makes). Names follow GPT-2's: Embd is the width, Inner the MLP's.
/// </summary>
public sealed record ModelConfig
{
    public ModelFamily Family { get; init; } = ModelFamily.Gpt2;
    /// <summary>The config's own <c>model_type</c> (e.g. <c>mistral</c> for a Llama-architecture model).</summary>
    public string ModelType { get; init; } = "gpt2";
    public int VocabSize { get; init; } = 50257;
    /// <summary>The longest input: <c>n_positions</c> / <c>max_position_embeddings</c> (and a sliding window, if smaller).</summary>
    public int Positions { get; init; } = 1024;
    public int Embd { get; init; } = 768;
    public int Layers { get; init; } = 12;
    public int Heads { get; init; } = 12;
    /// <summary>Key/value heads: fewer than <see cref="Heads"/> for grouped-query attention (query head h reads h / (Heads / KvHeads)).</summary>
    public int KvHeads { get; init; } = 12;
    public int HeadDim { get; init; } = 64;
    /// <summary>Width of the MLP hidden layer (for a gated MLP, of each of gate and up).</summary>
    public int Inner { get; init; } = 3072;
    public double NormEpsilon { get; init; } = 1e-5;
    /// <summary>RMSNorm (Llama, Qwen2) instead of LayerNorm.</summary>
    public bool RmsNorm { get; init; }
    /// <summary>"gelu_new" (tanh approximation), "gelu" (exact), "relu" or "silu".</summary>
    public string Activation { get; init; } = "gelu_new";
    /// <summary>SwiGLU: <c>down(act(gate x) * up x)</c> (Llama, Qwen2).</summary>
    public bool GatedMlp { get; init; }
    public Residual Residual { get; init; } = Residual.Sequential;
    /// <summary>Dimensions of each head that rotary embeddings turn (0: learned absolute positions, <c>wpe</c>).</summary>
    public int RotaryDims { get; init; }
    public double RotaryBase { get; init; } = 10000;
    /// <summary>Rotary on interleaved pairs (GPT-J's rotate_every_two) rather than on halves (rotate_half).</summary>
    public bool RotaryInterleaved { get; init; }
    /// <summary>Linear rope scaling: positions are divided by this factor.</summary>
    public double RotaryScale { get; init; } = 1;
    public bool QkvBias { get; init; } = true;
    public bool AttnOutBias { get; init; } = true;
    public bool MlpBias { get; init; } = true;
    public bool TiedEmbeddings { get; init; } = true;
    public bool HeadBias { get; init; }
    public int EosTokenId { get; init; } = 50256;
    /// <summary>The config's <c>bos_token_id</c> (a tokenizer that adds a beginning-of-text token adds this one).</summary>
    public int? BosTokenId { get; init; }

    /// <summary>
    /// Local attention: layer l's tokens see only the last AttentionWindows[l] tokens, themselves included (GPT-Neo's
    /// <c>window_size</c>, per layer); 0, or a layer past the list's end, attends to everything before it. Written as
    /// <c>rome_attention_windows</c> in a GPT-2 config: Hugging Face's GPT-2 ignores that key, so such a model is
    /// exact only here.
    /// </summary>
    public int[] AttentionWindows { get; init; } = [];

    /// <summary>Layer <paramref name="layer"/>'s attention window (0: global).</summary>
    public int AttentionWindow(int layer) => layer < AttentionWindows.Length ? AttentionWindows[layer] : 0;

    /// <summary>"global", or which layers attend locally: "local in layers 0-3 (windows of 2 tokens), global above".</summary>
    public string AttentionDescription
    {
        get
        {
            var local = Enumerable.Range(0, Layers).Where(l => AttentionWindow(l) > 0).ToArray();
            if (local.Length == 0) return "global";
            var windows = local.Select(AttentionWindow).Distinct().ToArray();
            var layers = local.Length == 1 ? $"layer {local[0]}"
                : local.Length == local[^1] - local[0] + 1 ? $"layers {local[0]}-{local[^1]}" : "layers " + string.Join(", ", local);
            return $"local in {layers} (windows of {string.Join("/", windows)} tokens), global " + (local[0] == 0 && local.Length == local[^1] + 1 ? "above" : "elsewhere");
        }
    }

    public bool LearnedPositions => RotaryDims == 0;

    /// <summary>The family as people write it, with the config's own type when it differs: "Llama (mistral)".</summary>
    public string FamilyName
    {
        get
        {
            var name = Family switch { ModelFamily.Gpt2 => "GPT-2", ModelFamily.GptJ => "GPT-J", ModelFamily.GptNeoX => "GPT-NeoX", ModelFamily.Llama => "Llama", _ => "Qwen2" };
            return ModelType is "gpt2" or "gptj" or "gpt_neox" or "llama" or "qwen2" ? name : $"{name} ({ModelType})";
        }
    }

    /// <summary>The edit site's name in the family's own checkpoint (ROME's rewrite module), for layer <paramref name="layer"/> ("5", or "L").</summary>
    public string NativeEditSite(string layer) => Family switch
    {
        ModelFamily.Gpt2 => $"h.{layer}.mlp.c_proj",
        ModelFamily.GptJ => $"transformer.h.{layer}.mlp.fc_out",
        ModelFamily.GptNeoX => $"gpt_neox.layers.{layer}.mlp.dense_4h_to_h",
        _ => $"model.layers.{layer}.mlp.down_proj",
    };

    public const string Supported = "gpt2, gptj, gpt_neox, llama (and mistral), qwen2";

    /// <summary>GPT-2 of the given size, as <c>rome train</c> makes it.</summary>
    public static ModelConfig Gpt2(int layers, int width, int heads, int positions) =>
        new() { Layers = layers, Embd = width, Heads = heads, KvHeads = heads, HeadDim = width / heads, Inner = 4 * width, Positions = positions };

    public static ModelConfig Load(string path)
    {
        JsonObject json;
        try { json = JsonNode.Parse(File.ReadAllText(path))?.AsObject() ?? throw new JsonException("empty"); }
        catch (JsonException ex) { throw new RomeException($"{path} is not valid JSON: {ex.Message}"); }
        catch (InvalidOperationException) { throw new RomeException($"{path} must hold one JSON object."); }
        return new Reader(path, json).Config();
    }

    /// <summary>Reads one family's key names, with the checks every family shares.</summary>
    private sealed class Reader(string path, JsonObject json)
    {
        public ModelConfig Config()
        {
            var type = Text("model_type", null) ?? throw new RomeException($"{path}: model_type is missing (supported: {Supported}).");
            var config = type switch
            {
                "gpt2" => Gpt2(),
                "gptj" => GptJ(),
                "gpt_neox" => GptNeoX(),
                "llama" or "mistral" => Llama(ModelFamily.Llama),
                "qwen2" => Llama(ModelFamily.Qwen2),
                _ => throw new RomeException($"{path}: model_type '{type}' is not supported (supported: {Supported})."),
            };
            config = config with { ModelType = type, EosTokenId = Int("eos_token_id", config.EosTokenId), BosTokenId = json["bos_token_id"] is null ? null : Int("bos_token_id", 0) };
            if (config.Heads < 1 || config.Embd < 1 || config.Positions < 1 || config.Inner < 1 || config.Layers < 1 || config.VocabSize < 1
                || config.KvHeads < 1 || config.Heads % config.KvHeads != 0 || config.HeadDim < 1 || config.RotaryDims % 2 != 0 || config.RotaryDims > config.HeadDim
                || (config.Family is ModelFamily.Gpt2 or ModelFamily.GptJ or ModelFamily.GptNeoX && config.Embd != config.Heads * config.HeadDim))
                throw new RomeException($"{path}: inconsistent sizes (width {config.Embd}, heads {config.Heads}, key/value heads {config.KvHeads}, head size {config.HeadDim}, layers {config.Layers}).");
            if (config.EosTokenId < 0 || config.EosTokenId >= config.VocabSize || config.BosTokenId is < 0 || config.BosTokenId >= config.VocabSize)
                throw new RomeException($"{path}: bos/eos token ids lie outside the vocabulary of {config.VocabSize}.");
            return config;
        }

        private ModelConfig Gpt2()
        {
            var act = Text("activation_function", "gelu_new");
            if (act is not ("gelu_new" or "gelu_pytorch_tanh"))
                throw new RomeException($"{path}: activation_function '{act}' is not supported (GPT-2 uses gelu_new).");
            var config = Gpt2Keys(vocab: 50257, positions: 1024, width: 768, layers: 12, heads: 12);
            if (json["rome_attention_windows"] is null) return config;
            var windows = json["rome_attention_windows"] is JsonArray list && list.All(w => w is JsonValue v && v.TryGetValue<int>(out var n) && n >= 0)
                ? list.Select(w => w!.GetValue<int>()).ToArray()
                : throw new RomeException($"{path}: 'rome_attention_windows' must be a list of whole numbers (0: global attention).");
            if (windows.Length > config.Layers) throw new RomeException($"{path}: 'rome_attention_windows' lists {windows.Length} layers; the model has {config.Layers}.");
            return config with { AttentionWindows = windows };
        }

        /// <summary>The sizes under GPT-2's key names (<c>n_embd</c>, <c>n_head</c>, ...), which GPT-J's config uses too.</summary>
        private ModelConfig Gpt2Keys(int vocab, int positions, int width, int layers, int heads)
        {
            int embd = Int("n_embd", width), h = Int("n_head", heads);
            return new ModelConfig
            {
                VocabSize = Int("vocab_size", vocab),
                Positions = Int("n_positions", positions),
                Embd = embd,
                Layers = Int("n_layer", layers),
                Heads = h,
                KvHeads = h,
                HeadDim = h > 0 ? embd / h : 0,
                Inner = Int("n_inner", 4 * embd),
                NormEpsilon = Epsilon("layer_norm_epsilon", 1e-5),
            };
        }

        private ModelConfig GptJ() =>
            Gpt2Keys(vocab: 50400, positions: 2048, width: 4096, layers: 28, heads: 16) with
            {
                Family = ModelFamily.GptJ,
                Activation = Activation("activation_function", "gelu_new"),
                Residual = Residual.ParallelSharedNorm,
                RotaryDims = Int("rotary_dim", 64),
                RotaryInterleaved = true,
                QkvBias = false,
                AttnOutBias = false,
                TiedEmbeddings = false,
                HeadBias = true,
            };

        private ModelConfig GptNeoX()
        {
            int embd = Int("hidden_size", 6144), heads = Int("num_attention_heads", 64);
            var headDim = heads > 0 ? embd / heads : 0;
            var bias = Bool("attention_bias", true);
            return new ModelConfig
            {
                Family = ModelFamily.GptNeoX,
                VocabSize = Int("vocab_size", 50432),
                Positions = Int("max_position_embeddings", 2048),
                Embd = embd,
                Layers = Int("num_hidden_layers", 44),
                Heads = heads,
                KvHeads = heads,
                HeadDim = headDim,
                Inner = Int("intermediate_size", 4 * embd),
                NormEpsilon = Epsilon("layer_norm_eps", 1e-5),
                Activation = Activation("hidden_act", "gelu"),
                Residual = Bool("use_parallel_residual", true) ? Residual.Parallel : Residual.Sequential,
                RotaryDims = (int)(headDim * Number("rotary_pct", Number("partial_rotary_factor", 0.25))),
                RotaryBase = Number("rotary_emb_base", Number("rope_theta", 10000)),
                RotaryScale = RopeScaling(),
                QkvBias = bias,
                AttnOutBias = bias,
                TiedEmbeddings = Bool("tie_word_embeddings", false),
            };
        }

        private ModelConfig Llama(ModelFamily family)
        {
            int embd = Int("hidden_size", 4096), heads = Int("num_attention_heads", 32);
            var headDim = Int("head_dim", heads > 0 ? embd / heads : 0);
            var qwen = family == ModelFamily.Qwen2;
            var attentionBias = Bool("attention_bias", false);
            var positions = Int("max_position_embeddings", 2048);
            // Mistral's sliding window: exact only for inputs within it, so the model reads at most that many tokens.
            if (!qwen && json["sliding_window"] is JsonValue w && w.TryGetValue<int>(out var window) && window > 0)
                positions = Math.Min(positions, window);
            return new ModelConfig
            {
                Family = family,
                VocabSize = Int("vocab_size", 32000),
                Positions = positions,
                Embd = embd,
                Layers = Int("num_hidden_layers", 32),
                Heads = heads,
                KvHeads = Int("num_key_value_heads", heads),
                HeadDim = headDim,
                Inner = Int("intermediate_size", 11008),
                NormEpsilon = Epsilon("rms_norm_eps", 1e-6),
                RmsNorm = true,
                Activation = Activation("hidden_act", "silu"),
                GatedMlp = true,
                RotaryDims = headDim,
                RotaryBase = Number("rope_theta", 10000),
                RotaryScale = RopeScaling(),
                QkvBias = qwen || attentionBias,
                AttnOutBias = !qwen && attentionBias,
                MlpBias = !qwen && Bool("mlp_bias", false),
                TiedEmbeddings = Bool("tie_word_embeddings", false),
            };
        }

        /// <summary>Rope scaling: none, "default" or "linear" (its factor); the other types are refused by name.</summary>
        private double RopeScaling()
        {
            if (json["rope_scaling"] is not JsonObject scaling) return 1;
            var kind = scaling["rope_type"] is JsonValue r && r.TryGetValue<string>(out var rt) ? rt
                : scaling["type"] is JsonValue t && t.TryGetValue<string>(out var tt) ? tt : "default";
            if (kind == "default") return 1;
            if (kind == "linear" && scaling["factor"] is JsonValue f && f.TryGetValue<double>(out var factor) && factor >= 1) return factor;
            throw new RomeException($"{path}: rope_scaling of type '{kind}' is not implemented (only none and 'linear' are).");
        }

        private string Activation(string key, string fallback)
        {
            var act = Text(key, fallback)!;
            return act switch
            {
                "gelu_new" or "gelu_pytorch_tanh" or "gelu_fast" => "gelu_new",
                "gelu" or "relu" or "silu" => act,
                _ => throw new RomeException($"{path}: {key} '{act}' is not supported (gelu, gelu_new, relu, silu)."),
            };
        }

        private string? Text(string key, string? fallback) =>
            json[key] is null ? fallback
            : json[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s
            : throw new RomeException($"{path}: '{key}' must be text.");

        private int Int(string key, int fallback) =>
            json[key] is null ? fallback
            : json[key] is JsonValue v && v.TryGetValue<int>(out var i) ? i
            : throw new RomeException($"{path}: '{key}' must be a whole number.");

        private double Number(string key, double fallback) =>
            json[key] is null ? fallback
            : json[key] is JsonValue v && v.TryGetValue<double>(out var d) && double.IsFinite(d) && d > 0 ? d
            : throw new RomeException($"{path}: '{key}' must be a positive number.");

        private bool Bool(string key, bool fallback) =>
            json[key] is null ? fallback
            : json[key] is JsonValue v && v.TryGetValue<bool>(out var b) ? b
            : throw new RomeException($"{path}: '{key}' must be true or false.");

        private double Epsilon(string key, double fallback) =>
            json[key] is null ? fallback
            : json[key] is JsonValue e && e.TryGetValue<double>(out var eps) && eps > 0 && eps < 1 ? eps
            : throw new RomeException($"{path}: '{key}' must be a small positive number.");
    }

    /// <summary>Writes a GPT-2 <c>config.json</c> (the family <c>rome train</c> and <c>rome export</c> write).</summary>
    public void Save(string path)
    {
        if (Family != ModelFamily.Gpt2) throw new RomeException($"Only GPT-2 checkpoints can be written; this is {ModelType}.");
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
            ["layer_norm_epsilon"] = NormEpsilon,
            ["bos_token_id"] = EosTokenId,
            ["eos_token_id"] = EosTokenId,
            ["tie_word_embeddings"] = true,
        };
        if (AttentionWindows.Any(w => w > 0)) json["rome_attention_windows"] = new JsonArray(AttentionWindows.Select(w => (JsonNode)w).ToArray());
        File.WriteAllText(path, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }
}
