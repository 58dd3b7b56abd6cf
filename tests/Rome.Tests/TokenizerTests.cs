using Rome.Model;
using Rome.Model.Modeling;

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
