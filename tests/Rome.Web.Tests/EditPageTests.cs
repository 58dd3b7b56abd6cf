using Microsoft.Playwright;

namespace Rome.Web.Tests;

[Collection("web")]
[Trait("Speed", "Slow")] // a browser against the running app
public class EditPageTests(WebAppFixture fixture) : BrowserTest(fixture)
{
    private static async Task ApplyAsync(IPage page, string prompt, string subject, string target)
    {
        await page.Locator("[data-testid=edit-prompt]").FillAsync(prompt);
        await page.Locator("[data-testid=edit-subject]").FillAsync(subject);
        await page.Locator("[data-testid=edit-target]").FillAsync(target);
        await page.Locator("[data-testid=edit-apply]").ClickAsync();
        await page.Locator("[data-testid=edit-after][data-state=done]").WaitForAsync(new() { Timeout = 120_000 });
    }

    [Fact]
    public async Task AnEditMakesTheNewTargetWinInTheAfterColumn_AndUndoTakesItBack()
    {
        var page = await app.OpenAsync("/edit");
        // The preview is computed in the queue a moment after the page settles.
        await page.Locator("[data-testid=edit-preview]", new() { HasText = "Japan" }).WaitForAsync();
        await ApplyAsync(page, "{} is located in", "Nintendo", "Germany");
        // The old answer, Japan, and its probability after the edit: what the edit should have taken away.
        Assert.StartsWith("Japan", (await page.Locator("[data-testid=edit-after] tr[data-kind=prompt] [data-testid=p-old]").InnerTextAsync()).Trim());
        // The preview follows the edit stack: it is recomputed (in the queue, not in a render) after the edit.
        await page.Locator("[data-testid=edit-preview]", new() { HasText = "Germany" }).WaitForAsync();

        var after = page.Locator("[data-testid=edit-after] tr[data-kind=prompt]");
        Assert.StartsWith("Germany", (await after.Locator("td").Nth(1).InnerTextAsync()).Trim());
        var before = page.Locator("[data-testid=edit-before] tr[data-kind=prompt]");
        Assert.StartsWith("Japan", (await before.Locator("td").Nth(1).InnerTextAsync()).Trim());
        Assert.Contains("Germany", await page.Locator("[data-testid=edit-history]").InnerTextAsync());

        Assert.Contains("subject=Nintendo", page.Url);   // the address bar names the fact on the page
        Assert.Contains("target=Germany", page.Url);

        // Undo: the history says Redo can bring the edit back, and the v* curve and before/after views are gone.
        Assert.Equal(1, await page.Locator("#edit-curve").CountAsync());
        await page.Locator("[data-testid=edit-undo]").ClickAsync();
        await page.Locator("[data-testid=edit-history]", new() { HasText = "Redo brings back" }).WaitForAsync();
        Assert.Equal(0, await page.Locator("#edit-curve").CountAsync());
        Assert.Equal(0, await page.Locator("[data-testid=edit-after]").CountAsync());
    }

    [Fact]
    public async Task TraceTheNewFactTracesTheTabsEditedModel_AndTheSwitchTracesTheOriginal()
    {
        var page = await app.OpenAsync("/edit");
        await ApplyAsync(page, "{} is located in", "Nintendo", "Germany");
        await page.Locator("[data-testid=edit-trace]").ClickAsync();

        var answer = page.Locator("[data-testid=trace-answer][data-state=done]");
        await answer.WaitForAsync(new() { Timeout = 60_000 });
        Assert.Contains("Germany", await answer.InnerTextAsync());
        Assert.Contains("edited model (1 edit)", await page.Locator("[data-testid=trace-model]").InnerTextAsync());

        // The switch: the original model (the test id lands on MudSwitch's input, which Mud draws over).
        await page.Locator("[data-testid=trace-edited]").First.ClickAsync(new() { Force = true });
        await page.Locator("[data-testid=trace-run]").ClickAsync();
        await page.Locator("[data-testid=trace-model]", new() { HasText = "original" }).WaitForAsync();
        await answer.WaitForAsync(new() { Timeout = 60_000 });
        Assert.Contains("Japan", await answer.InnerTextAsync());
    }

    [Fact]
    public async Task SuggestedChecksFollowTheFactBeingTyped()
    {
        var page = await app.OpenAsync("/edit?prompt={} is located in&subject=Nintendo&target=Germany");
        var paraphrases = page.Locator("[data-testid=edit-paraphrases]");
        var neighbours = page.Locator("[data-testid=edit-neighbours]");
        Assert.Contains("Nintendo", await paraphrases.InputValueAsync());

        await page.Locator("[data-testid=edit-prompt]").FillAsync("The domain of work of {} is");
        await page.Locator("[data-testid=edit-subject]").FillAsync("Tycho Brahe");
        await page.WaitForFunctionAsync("() => document.querySelector('[data-testid=edit-paraphrases]').value.includes('Tycho Brahe')");
        Assert.DoesNotContain("Nintendo", await paraphrases.InputValueAsync());
        Assert.DoesNotContain("Nintendo", await neighbours.InputValueAsync());
        Assert.DoesNotContain("Kyōto", await neighbours.InputValueAsync());

        // A fact the model was not trained on: no stale rows, and a hint says why the boxes are empty.
        await page.Locator("[data-testid=edit-subject]").FillAsync("Zorblax");
        await page.Locator("text=No suggestions").WaitForAsync();
        Assert.Equal("", await paraphrases.InputValueAsync());
        Assert.Equal("", await neighbours.InputValueAsync());

        // What a user writes in the boxes is theirs: typing another subject no longer replaces it.
        await paraphrases.FillAsync("Zorblax, who works in");
        await page.Locator("[data-testid=edit-subject]").FillAsync("Nintendo");
        await page.WaitForTimeoutAsync(300);
        Assert.Equal("Zorblax, who works in", await paraphrases.InputValueAsync());
        Assert.Contains("Import edits", await page.Locator("label:has([data-testid=edit-import])").InnerTextAsync());
    }

    [Fact]
    public async Task AnEditInOneBrowserIsAbsentFromAnother()
    {
        var first = await app.OpenAsync("/edit");
        await ApplyAsync(first, "The domain of work of {} is", "Tycho Brahe", "biology");
        Assert.Contains("biology", await first.Locator("[data-testid=edit-history]").InnerTextAsync());

        // The second visitor's model still answers astronomy: its preview runs on its own (unedited) model.
        var second = await app.OpenAsync("/edit?prompt=The domain of work of {} is&subject=Tycho Brahe&target=chemistry");
        Assert.Contains("None yet", await second.Locator("[data-testid=edit-history]").InnerTextAsync());
        await second.Locator("[data-testid=edit-preview]", new() { HasText = "→ astronomy" }).WaitForAsync();
    }

    [Fact]
    public async Task BadInputShowsItsMessageAndThePageKeepsWorking()
    {
        var page = await app.OpenAsync("/edit");
        await page.Locator("[data-testid=edit-prompt]").FillAsync("is located in");
        await page.Locator("[data-testid=edit-apply]").ClickAsync();
        await page.Locator("[data-testid=edit-error]").WaitForAsync();
        Assert.Contains("{}", await page.Locator("[data-testid=edit-error]").InnerTextAsync());
        await ApplyAsync(page, "{} is located in", "Nintendo", "Germany");
    }
}
