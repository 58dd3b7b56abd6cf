using Microsoft.Playwright;

namespace Rome.Web.Tests;

/// <summary>The Edit page's many-facts mode: a batch of facts written as one entry of the tab's history, and undone as one.</summary>
[Collection("web")]
[Trait("Speed", "Slow")] // a browser against the running app
public class ManyFactsTests(WebAppFixture fixture) : BrowserTest(fixture)
{
    private const string FiveFacts = """
        prompt,subject,target
        {} is located in,Nintendo,Germany
        "{}, founded in",Chanel,Milan
        {} is a citizen of,Tycho Brahe,France
        The headquarter of {} is in,David Suzuki Foundation,London
        {} is produced by,B-29 Superfortress,Chrysler
        """;

    [Fact]
    public async Task ABatchOfFiveIsOneEntryWithAResultPerFact_AndUndoTakesItAllBack()
    {
        var page = await app.OpenAsync("/edit");
        await page.Locator(".mud-tab", new() { HasText = "Many facts" }).ClickAsync();
        await page.Locator("[data-testid=many-text]").FillAsync(FiveFacts);
        await page.Locator("[data-testid=many-run]").ClickAsync();
        await page.Locator("[data-testid=many-job][data-state=done]").WaitForAsync(new() { State = WaitForSelectorState.Attached, Timeout = 120_000 });

        var rows = page.Locator("[data-testid=many-table] tbody tr");
        Assert.Equal(5, await rows.CountAsync());
        var took = int.Parse((await page.Locator("[data-testid=many-verdict]").GetAttributeAsync("data-took"))!);
        Assert.True(took >= 4, $"{took} of 5 took");
        Assert.Contains("Germany", await rows.First.InnerTextAsync());
        Assert.Contains("retention", await page.Locator("[data-testid=many-health]").InnerTextAsync());
        var history = page.Locator("[data-testid=edit-history]");
        Assert.Equal(1, await history.Locator("[data-testid=edit-batch]").CountAsync());
        Assert.Contains("5 facts with MEMIT", await history.InnerTextAsync());

        // The edited model answers the new fact on the Trace page's link, and one undo takes all five back.
        await page.Locator("[data-testid=edit-undo]").ClickAsync();
        await page.Locator("[data-testid=edit-history]", new() { HasText = "Redo brings back" }).WaitForAsync();
    }

    [Fact]
    public async Task ABadRowIsNamed_AndNothingIsWritten()
    {
        var page = await app.OpenAsync("/edit?mode=many");   // the link a teacher hands out
        await page.Locator("[data-testid=many-text]").FillAsync("prompt,subject,target\n{} is located in,Nintendo,Germany\nParis is in,Rome,Italy\n");
        await page.Locator("[data-testid=many-run]").ClickAsync();
        var error = page.Locator("[data-testid=many-error]");
        await error.WaitForAsync();
        Assert.Contains("row 2", await error.InnerTextAsync());
        Assert.Contains("None yet", await page.Locator("[data-testid=edit-history]").InnerTextAsync());
    }
}
