namespace Rome.Tests;

/// <summary>What a user types becomes a request the same way on the Trace and Edit pages; a verdict reads the views it judges.</summary>
public class EditRequestTests
{
    [Theory]
    [InlineData("Nintendo is located in", "Nintendo", "{} is located in")]
    [InlineData("{} is located in", "Nintendo", "{} is located in")]
    [InlineData("The headquarter of Nintendo is in", " Nintendo ", "The headquarter of {} is in")]
    [InlineData("Nintendo of America is a part of Nintendo", "Nintendo", "Nintendo of America is a part of {}")] // the last occurrence
    public void APlainSentenceOrATemplateGiveTheSameRequest(string typed, string subject, string template)
    {
        var request = EditRequest.FromUser(typed, subject, "Germany");
        Assert.Equal(template, request.Prompt);
        Assert.Equal(subject.Trim(), request.Subject);
        Assert.Equal(typed.Replace("{}", "Nintendo"), EditRequest.Sentence(typed, subject));
    }

    [Fact]
    public void ASubjectMissingFromTheSentenceIsRefusedWithAnExample()
    {
        var error = Assert.Throws<RomeException>(() => EditRequest.FromUser("Sony is located in", "Nintendo", "Germany"));
        Assert.Contains("Nintendo is located in", error.Message);
        Assert.Contains("{}", error.Message);
    }

    private static PromptReport Row(string kind, int top) => new(kind, kind, [new TokenProbability(top, $"t{top}", 0.9)], 0, null, null);

    [Fact]
    public void TheVerdictCountsParaphrasesThatSayTheTarget_AndNamesTheNeighboursThatFlipped()
    {
        const int target = 7, old = 1;
        var before = new EditReport([Row("prompt", old), Row("paraphrase", old), Row("paraphrase", old), Row("neighbour", 2), Row("neighbour", 3)], "", "");
        var after = new EditReport([Row("prompt", target), Row("paraphrase", target), Row("paraphrase", old), Row("neighbour", 2), Row("neighbour", target)], "", "");
        var verdict = EditVerdict.Of(target, before, after);
        Assert.True(verdict.Took);
        Assert.Equal((1, 2, 1, 2), (verdict.ParaphrasesSaying, verdict.Paraphrases, verdict.NeighboursKept, verdict.Neighbours));
        Assert.Equal(["neighbour"], verdict.Flipped);
        Assert.StartsWith("The edit took", verdict.Summary);
        Assert.Contains("1 of 2 paraphrases now say", verdict.Summary);
        Assert.Contains("1 of 2 neighbours kept their own answer (changed: neighbour)", verdict.Summary);

        var failed = EditVerdict.Of(target, before, before);
        Assert.False(failed.Took);
        Assert.StartsWith("The edit did not take", failed.Summary);
        Assert.True(failed.Specific);
    }
}
