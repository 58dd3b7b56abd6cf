using Microsoft.Playwright;

namespace Rome.Web.Tests;

[Collection("web")]
public class EditPageTests(WebAppFixture app)
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
        Assert.Contains("Japan", await page.Locator("[data-testid=edit-preview]").InnerTextAsync());
        await ApplyAsync(page, "{} is located in", "Nintendo", "Germany");
        Assert.Contains("p(Japan)", await page.Locator("[data-testid=edit-after] thead").InnerTextAsync());

        var after = page.Locator("[data-testid=edit-after] tr[data-kind=prompt]");
        Assert.StartsWith("Germany", (await after.Locator("td").Nth(1).InnerTextAsync()).Trim());
        var before = page.Locator("[data-testid=edit-before] tr[data-kind=prompt]");
        Assert.StartsWith("Japan", (await before.Locator("td").Nth(1).InnerTextAsync()).Trim());
        Assert.Contains("Germany", await page.Locator("[data-testid=edit-history]").InnerTextAsync());
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots.Folder, "edit.png"), FullPage = true });

        await page.Locator("[data-testid=edit-undo]").ClickAsync();
        await page.Locator("[data-testid=edit-history]", new() { HasText = "None yet" }).WaitForAsync();
    }

    [Fact]
    public async Task AnEditInOneBrowserIsAbsentFromAnother()
    {
        var first = await app.OpenAsync("/edit");
        await ApplyAsync(first, "The domain of work of {} is", "Tycho Brahe", "biology");
        Assert.Contains("biology", await first.Locator("[data-testid=edit-history]").InnerTextAsync());

        var second = await app.OpenAsync("/edit");
        Assert.Contains("None yet", await second.Locator("[data-testid=edit-history]").InnerTextAsync());
        // The second visitor's model still answers astronomy.
        await ApplyAsync(second, "The domain of work of {} is", "Tycho Brahe", "chemistry");
        var before = second.Locator("[data-testid=edit-before] tr[data-kind=prompt]");
        Assert.StartsWith("astronomy", (await before.Locator("td").Nth(1).InnerTextAsync()).Trim());
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
