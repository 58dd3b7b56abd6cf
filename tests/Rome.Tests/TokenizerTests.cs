namespace Rome.Tests;

public class TokenizerTests
{
    private readonly TextTokenizer _t = TextTokenizer.Gpt2();

    [Fact]
    public void EncodesLikeGpt2()
    {
        // Reference ids from the GPT-2 vocabulary (the golden fixture's second input is "Hello world").
        Assert.Equal([15496, 995], _t.Encode("Hello world"));
        Assert.Equal([464, 3139, 286, 4881, 318], _t.Encode("The capital of France is"));
        Assert.Equal("The capital of France is", _t.Decode(_t.Encode("The capital of France is")));
        Assert.Equal(" Paris", _t.TokenText(6342));
    }

    /// <summary>
    /// A tokenizer.json holding GPT-2's vocabulary and merges (made in the test) encodes and decodes as the GPT-2
    /// tokenizer does: ParaRel's templates filled with its facts, and text with digits, punctuation, spacing,
    /// accents and other scripts.
    /// </summary>
    [Fact]
    public void ATokenizerJsonOfGpt2sVocabularyEncodesAsGpt2Does()
    {
        var folder = TestPaths.TempFolder();
        try
        {
            TestTokenizers.WriteGpt2(folder);
            var fromJson = TextTokenizer.ForModel(folder, new ModelConfig { Family = ModelFamily.GptNeoX, ModelType = "gpt_neox" });
            var sentences = ParaRelSentences(300).Concat([
                "It's 2,048 km (1,273 mi) from A to B; they'll say: \"naïve café\"!",
                "  leading spaces, trailing spaces   ", "tabs\tand\nnew lines\n\n", "Straße, Ærøskøbing, Łódź, São Paulo",
                "東京 is the capital of 日本.", "Emoji 🙂 and symbols ©®™ ±½", "I'd've done it in 1999-2001, wasn't it?",
                "<|endoftext|>The next document", "x=1+2*3/4 [a] {b} #hash @at", "MIXED case ＷＩＤＥ letters",
            ]).ToList();
            Assert.True(sentences.Count > 300);
            foreach (var text in sentences)
            {
                Assert.Equal(_t.Encode(text), fromJson.Encode(text));
                Assert.Equal(text, fromJson.Decode(fromJson.Encode(text)));
            }
            Assert.Equal(_t.FindSpan("The Eiffel Tower is in Paris", "Eiffel Tower"), fromJson.FindSpan("The Eiffel Tower is in Paris", "Eiffel Tower"));
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    /// <summary>A model whose config asks for a beginning-of-text token gets it before every prompt, and spans follow it.</summary>
    [Fact]
    public void ABeginningOfTextTokenStartsPromptsAndShiftsSpans()
    {
        var folder = TestPaths.TempFolder();
        try
        {
            TestTokenizers.WriteBytes(folder);
            File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), """{"add_bos_token": true, "bos_token": "<|endoftext|>"}""");
            var t = TextTokenizer.ForModel(folder, new ModelConfig { Family = ModelFamily.Llama, ModelType = "llama", VocabSize = 300 });
            Assert.Equal(256, t.BeginningOfText);
            Assert.Equal([256, (int)'H', (int)'i'], t.EncodePrompt("Hi"));
            Assert.Equal([(int)'H', (int)'i'], t.Encode("Hi"));
            Assert.Equal(new TokenSpan(5, 7), t.FindSpan("The cat sat", "cat")); // BOS, T, h, e, space, then c a t

            var e = Assert.Throws<RomeException>(() => TextTokenizer.ForModel(folder, new ModelConfig { Family = ModelFamily.Llama, ModelType = "llama", VocabSize = 200 }));
            Assert.Contains("up to 256", e.Message);
            File.Delete(Path.Combine(folder, "tokenizer.json"));
            e = Assert.Throws<RomeException>(() => TextTokenizer.ForModel(folder, new ModelConfig { Family = ModelFamily.Llama, ModelType = "llama" }));
            Assert.Contains("has no tokenizer", e.Message);
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    /// <summary>
    /// A SentencePiece tokenizer in Llama 2's layout ("▁" for spaces, byte fallback, &lt;s&gt; first): spans of a
    /// subject are found from the original text, whatever the "▁" and the beginning-of-text token shift.
    /// </summary>
    [Fact]
    public void SentencePieceTokensWithTheirMarkFindTheSubjectSpan()
    {
        var folder = TestPaths.TempFolder();
        try
        {
            TestTokenizers.WriteSentencePiece(folder, "▁E", "if", "fel", "▁T", "ow", "er", "▁is", "▁in");
            var t = TextTokenizer.ForModel(folder, new ModelConfig { Family = ModelFamily.Llama, ModelType = "llama", VocabSize = 384 });
            Assert.Equal(1, t.BeginningOfText);
            const string prompt = "The Eiffel Tower is in Paris, café";
            var (ids, offsets) = t.EncodeWithOffsets(prompt);
            Assert.Equal(1, ids[0]);
            Assert.Equal(ids, t.EncodePrompt(prompt));
            Assert.Contains(ids, id => id is >= 3 and < 259); // é falls back to bytes
            Assert.Equal(prompt, t.Decode(ids.Skip(1)));
            Assert.Equal([(0, 0), (0, 1), (1, 2)], offsets[..3]); // <s>, "▁T", "h": offsets in the prompt, not in its "▁"-escaped form
            var span = t.FindSpan(prompt, "Eiffel Tower");
            Assert.Equal(259, ids[span.First]); // "▁E": the mark of the space before the subject starts its first token
            Assert.Equal("Eiffel Tower", t.Decode(ids[span.First..(span.Last + 1)]));
            // A target " Eiffel" encodes as it reads inside the prompt: "▁E" first, not a lone "▁" before it.
            Assert.Equal(ids[span.First..(span.First + 5)], t.Encode(" Eiffel")); // ▁E if f e l
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    private static IEnumerable<string> ParaRelSentences(int count)
    {
        var folder = Path.Combine(TestPaths.Data, "pararel");
        var random = new Random(7);
        var relations = Directory.GetFiles(Path.Combine(folder, "patterns")).Select(Path.GetFileNameWithoutExtension).Where(r => File.Exists(Path.Combine(folder, "facts", r + ".jsonl"))).Order().ToList();
        for (int i = 0; i < count; i++)
        {
            var relation = relations[i % relations.Count];
            var patterns = File.ReadLines(Path.Combine(folder, "patterns", relation + ".jsonl")).ToList();
            var facts = File.ReadLines(Path.Combine(folder, "facts", relation + ".jsonl")).ToList();
            var pattern = System.Text.Json.JsonDocument.Parse(patterns[random.Next(patterns.Count)]).RootElement.GetProperty("pattern").GetString()!;
            var fact = System.Text.Json.JsonDocument.Parse(facts[random.Next(facts.Count)]).RootElement;
            yield return pattern.Replace("[X]", fact.GetProperty("sub_label").GetString()).Replace("[Y]", fact.GetProperty("obj_label").GetString());
        }
    }

    [Fact]
    public void TokensThatArePiecesOfACharacterAreLabelledByTheCharacter()
    {
        // Byte-level BPE splits some characters over tokens; alone, each piece decodes to the replacement character.
        var ids = _t.Encode("Takahashi 髙 is");
        var piece = Array.FindIndex(ids, id => _t.TokenText(id).Contains('\uFFFD'));
        Assert.True(piece > 0, "the test needs a character split over tokens");
        var labels = _t.TokenLabels(ids);
        Assert.All(labels, l => Assert.DoesNotContain('\uFFFD', l));
        var pieces = labels.Count(l => l.Trim().StartsWith("髙 ("));
        Assert.True(pieces > 1);
        for (int k = 0; k < pieces; k++) Assert.Equal($"髙 ({k + 1}/{pieces})", labels[piece + k].Trim());
        Assert.Equal(" is", labels[^1]);
        Assert.Equal("(part of a character)", _t.TokenLabel(ids[piece]));
        Assert.Equal(" Paris", _t.TokenLabel(6342));   // whole tokens keep their text
    }

    [Fact]
    public void SubjectInTheMiddle()
    {
        var span = _t.FindSpan("The capital of France is", "France");
        Assert.Equal(new TokenSpan(3, 3), span);
    }

    [Fact]
    public void MultiTokenSubjectAtTheStart()
    {
        const string prompt = "Danielle Darrieux's mother tongue is";
        var ids = _t.Encode(prompt);
        var span = _t.FindSpan(prompt, "Danielle Darrieux");
        Assert.Equal(0, span.First);
        Assert.True(span.Length >= 3);
        Assert.Equal("Danielle Darrieux", _t.Decode(ids[span.First..(span.Last + 1)]).Trim());
        Assert.DoesNotContain("'s", _t.Decode(ids[span.First..(span.Last + 1)]));
    }

    [Fact]
    public void RepeatedSubjectUsesTheFirstOccurrence()
    {
        var span = _t.FindSpan("Paris is in France, and Paris is", "Paris");
        Assert.Equal(new TokenSpan(0, 0), span);
    }

    [Fact]
    public void MissingOrEmptySubjectIsAClearError()
    {
        Assert.Contains("does not occur", Assert.Throws<RomeException>(() => _t.FindSpan("The capital of France is", "Spain")).Message);
        Assert.Contains("empty", Assert.Throws<RomeException>(() => _t.FindSpan("The capital of France is", " ")).Message);
    }
}
