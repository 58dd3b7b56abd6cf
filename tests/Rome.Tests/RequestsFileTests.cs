namespace Rome.Tests;

/// <summary>Facts in bulk: the JSON and CSV forms <c>rome edit --requests</c> and the Edit page take, and the rows they refuse.</summary>
public class RequestsFileTests
{
    [Fact]
    public void CounterFactCasesRewritesPlainObjectsAndCsvAllRead()
    {
        var cases = """[{"case_id": 0, "requested_rewrite": {"prompt": "{} is located in", "subject": "Nintendo", "target_new": {"str": "Germany", "id": "Q183"}, "target_true": {"str": "Japan", "id": "Q17"}}}]""";
        var rewrites = """[{"prompt": "{} is located in", "subject": "Nintendo", "target_new": {"str": "Germany"}}]""";
        var plain = """[{"prompt": "Nintendo is located in", "subject": "Nintendo", "target": "Germany"}]""";
        var csv = "subject,prompt,target\nNintendo,{} is located in,Germany\n\"Washington, D.C.\",\"{}, the capital, is in\",\"Ohio\"\n";
        foreach (var json in new[] { cases, rewrites, plain })
            Assert.Equal([new EditRequest("{} is located in", "Nintendo", "Germany")], RequestsFile.Parse(json, "facts.json", csv: false));
        var rows = RequestsFile.Parse(csv, "facts.csv", csv: true);
        Assert.Equal(new EditRequest("{}, the capital, is in", "Washington, D.C.", "Ohio"), rows[1]);
    }

    [Theory]
    [InlineData("""[{"prompt": "{} is in", "subject": "A", "target": "B"}, {"prompt": "{} is in", "subject": "C", "target": ""}]""", "row 2: the new target is empty")]
    [InlineData("""[{"prompt": "{} is in", "subject": "A", "target": "a target that is a whole sentence rather than the name of something"}]""", "row 1: the new target is 67 characters long")]
    [InlineData("""[{"prompt": "Paris is in", "subject": "Rome", "target": "Italy"}]""", "row 1: the prompt must contain the subject")]
    [InlineData("""[{"prompt": "{} is in", "subject": 7, "target": "Italy"}]""", "row 1: \"subject\" must be text, not number")]
    [InlineData("""[{"prompt": "{} is in", "target": "Italy"}]""", "row 1: the subject is empty")]
    [InlineData("""[3]""", "row 1: a fact is an object")]
    [InlineData("""{"prompt": "{} is in"}""", "must hold a JSON list")]
    [InlineData("""[]""", "holds no facts")]
    [InlineData("""not json""", "is neither a JSON list nor a CSV file")]
    public void ABadRowIsRefusedByItsNumber(string text, string message)
    {
        var e = Assert.Throws<RomeException>(() => RequestsFile.Parse(text, "facts.json", csv: false));
        Assert.Contains(message, e.Message);
        Assert.StartsWith("facts.json", e.Message);
    }

    [Fact]
    public void TenThousandRowsAreRefused_AndACsvNeedsItsColumns()
    {
        var many = "[" + string.Join(",", Enumerable.Repeat("""{"prompt": "{} is in", "subject": "A", "target": "B"}""", 10_000)) + "]";
        Assert.Contains("holds 10,000 facts; a file may hold at most 1,000", Assert.Throws<RomeException>(() => RequestsFile.Parse(many, "big.json", csv: false)).Message);
        Assert.Contains("must name the columns prompt, subject and target", Assert.Throws<RomeException>(() => RequestsFile.Parse("a,b\n1,2\n", "x.csv", csv: true)).Message);
    }
}
