using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace Rome.Model.Modeling;

/// <summary>
/// Reads a Hugging Face <c>tokenizer.json</c> (with <c>tokenizer_config.json</c> beside it) into Microsoft.ML.Tokenizers:
/// byte-level BPE (GPT-2, GPT-J, NeoX, Qwen2, Llama 3), which differ in their vocabulary, merges, special tokens and the
/// regular expression that splits text into words before BPE; or SentencePiece BPE with byte fallback (Llama 2,
/// Mistral), read from the <c>tokenizer.model</c> beside it.
/// </summary>
public static class TokenizerJson
{
    public const string File = "tokenizer.json";
    public const string ConfigFile = "tokenizer_config.json";
    public const string SentencePieceFile = "tokenizer.model";

    /// <summary>GPT-2's split, used when a byte-level pre-tokenizer has no pattern of its own.</summary>
    private const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    /// <summary>The tokenizer, and the token it puts before every prompt (null when none).</summary>
    public static (Tokenizer Tokenizer, int? BeginningOfText) Load(string folder)
    {
        var path = Path.Combine(folder, File);
        JsonObject json;
        try { json = JsonNode.Parse(System.IO.File.ReadAllText(path))?.AsObject() ?? throw new FormatException("empty"); }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or FormatException)
        { throw new RomeException($"{path} is not valid JSON: {e.Message}"); }
        try
        {
            var model = json["model"]?.AsObject() ?? throw new RomeException($"{path} has no model.");
            var type = (string?)model["type"];
            if (type != "BPE") throw new RomeException($"{path}: a {type ?? "missing"} tokenizer model is not supported (byte-level BPE is).");
            var special = (json["added_tokens"]?.AsArray() ?? [])
                .Where(t => (bool?)t!["special"] == true)
                .ToDictionary(t => (string)t!["content"]!, t => (int)t!["id"]!);
            var preTokenizers = Flatten(json["pre_tokenizer"]).ToList();
            if (!preTokenizers.Any(p => (string?)p["type"] == "ByteLevel"))
            {
                // SentencePiece-style BPE ("▁" for spaces, byte fallback): Microsoft.ML.Tokenizers reads it from the
                // SentencePiece model file that such folders carry beside tokenizer.json.
                var modelFile = Path.Combine(folder, SentencePieceFile);
                if (!System.IO.File.Exists(modelFile))
                    throw new RomeException($"{path} describes a SentencePiece-style tokenizer (Llama 2, Mistral): it needs {SentencePieceFile} beside it.");
                using var stream = System.IO.File.OpenRead(modelFile);
                return (SentencePieceTokenizer.Create(stream, addBeginningOfSentence: false, addEndOfSentence: false), BeginningOfText(folder, json, special));
            }

            var vocabulary = model["vocab"]!.AsObject().Select(kv => new KeyValuePair<string, int>(kv.Key, (int)kv.Value!)).ToList();
            var merges = model["merges"]?.AsArray().Select(m => m is JsonArray pair ? $"{pair[0]} {pair[1]}" : (string)m!).ToList() ?? [];
            var split = preTokenizers.Where(p => (string?)p["type"] == "Split").Select(p => (string?)p["pattern"]?["Regex"]).FirstOrDefault(r => r is not null);
            var regex = new Regex(split ?? Gpt2Pattern, RegexOptions.Compiled);
            var tokenizer = BpeTokenizer.Create(new BpeOptions(vocabulary)
            {
                Merges = merges,
                ByteLevel = true,
                PreTokenizer = new RegexPreTokenizer(regex, special.Count > 0 ? special : null),
                SpecialTokens = special.Count > 0 ? special : null,
            });
            return (tokenizer, BeginningOfText(folder, json, special));
        }
        catch (Exception e) when (e is not RomeException)
        { throw new RomeException($"{path} could not be read as a tokenizer: {e.Message}"); }
    }

    /// <summary>
    /// The token a prompt starts with: tokenizer_config.json's <c>bos_token</c> when its <c>add_bos_token</c> is true
    /// (Llama), or the special token that tokenizer.json's post-processor puts first (Llama 3).
    /// </summary>
    private static int? BeginningOfText(string folder, JsonObject json, IReadOnlyDictionary<string, int> special)
    {
        var configPath = Path.Combine(folder, ConfigFile);
        if (System.IO.File.Exists(configPath) && JsonNode.Parse(System.IO.File.ReadAllText(configPath)) is JsonObject config
            && (bool?)config["add_bos_token"] == true)
        {
            var bos = config["bos_token"] is JsonObject o ? (string?)o["content"] : (string?)config["bos_token"];
            if (bos is not null && special.TryGetValue(bos, out var id)) return id;
        }
        var single = Flatten(json["post_processor"]).Select(p => p["single"]).OfType<JsonArray>().FirstOrDefault();
        if (single is [JsonObject first, ..] && first["SpecialToken"]?["id"] is JsonValue v && special.TryGetValue((string)v!, out var first_id))
            return first_id;
        return null;
    }

    /// <summary>A pre-tokenizer or post-processor, with the members of a Sequence.</summary>
    private static IEnumerable<JsonObject> Flatten(JsonNode? node)
    {
        if (node is not JsonObject o) yield break;
        yield return o;
        foreach (var key in new[] { "pretokenizers", "processors" })
            if (o[key] is JsonArray items)
                foreach (var item in items.SelectMany(Flatten)) yield return item;
    }
}
