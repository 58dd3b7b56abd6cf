using Microsoft.Playwright;

namespace Rome.Web.Tests;

/// <summary>An edit's verdict in words and colour: what it broke, and whether it took.</summary>
[Collection("web")]
[Trait("Speed", "Slow")] // a browser against the running app
public class EditVerdictTests(WebAppFixture fixture) : BrowserTest(fixture)
{
    /// <summary>Chanel "{}, founded in" → Milan moves every suggested neighbour (SNCF, Givenchy, Simca) to Milan too.</summary>
    [Fact]
    public async Task ASpillOverEditNamesAndMarksTheNeighboursItFlipped()
    {
        var page = await app.OpenAsync("/edit?prompt=Chanel, founded in&subject=Chanel&target=Milan");
        var neighbours = await page.Locator("[data-testid=edit-neighbours]").InputValueAsync();
        Assert.Contains("Givenchy", neighbours);
        await page.Locator("[data-testid=edit-apply]").ClickAsync();
        var verdict = page.Locator("[data-testid=edit-verdict]");
        await verdict.WaitForAsync(new() { Timeout = 120_000 });

        Assert.Equal("true", await verdict.GetAttributeAsync("data-took"));
        Assert.NotEqual("0", await verdict.GetAttributeAsync("data-flipped"));
        var text = await verdict.InnerTextAsync();
        Assert.Contains("The edit took", text);
        Assert.Contains("kept their own answer", text);
        Assert.Contains("Givenchy", text);   // named
        Assert.Contains("spill-over", text);
        // Marked in the after table, with the neighbour's own answer (Paris) before and after, not the edited subject's.
        var flipped = page.Locator("[data-testid=edit-after] tr[data-kind=neighbour][data-flipped=true]");
        Assert.True(await flipped.CountAsync() >= 1);
        Assert.Contains("changed", await flipped.First.InnerTextAsync());
        Assert.StartsWith("Paris", (await page.Locator("[data-testid=edit-before] tr[data-kind=neighbour] [data-testid=p-old]").First.InnerTextAsync()).Trim());
        Assert.StartsWith("Paris", (await flipped.First.Locator("[data-testid=p-old]").InnerTextAsync()).Trim());
        await page.Locator("[data-testid=edit-history]", new() { HasText = "changed" }).WaitForAsync(); // its own render
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots.Folder, "edit.png"), FullPage = true });
    }

    /// <summary>Nintendo → "New York City" leaves "Japan" on top: the page says so, and the history marks it, still undoable.</summary>
    [Fact]
    public async Task AnEditThatDoesNotTakeSaysSo_AndStaysUndoable()
    {
        var page = await app.OpenAsync("/edit?prompt={} is located in&subject=Nintendo&target=New York City");
        await page.Locator("[data-testid=edit-apply]").ClickAsync();
        var verdict = page.Locator("[data-testid=edit-verdict]");
        await verdict.WaitForAsync(new() { Timeout = 120_000 });
        Assert.Equal("false", await verdict.GetAttributeAsync("data-took"));
        Assert.Contains("did not take", await verdict.InnerTextAsync());
        await page.Locator("[data-testid=edit-history]", new() { HasText = "did not take" }).WaitForAsync(); // its own render
        await page.Locator("[data-testid=edit-undo]").ClickAsync();
        await page.Locator("[data-testid=edit-history]", new() { HasText = "Redo brings back" }).WaitForAsync();
    }
}
