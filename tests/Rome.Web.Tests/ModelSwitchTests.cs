using Microsoft.Playwright;

namespace Rome.Web.Tests;

/// <summary>Several models (Rome:Models): each tab picks one in the app bar; one that fails to load does not stop the others.</summary>
[Collection("web")]
[Trait("Speed", "Slow")] // a browser against the running app
public class ModelSwitchTests(WebAppFixture fixture) : BrowserTest(fixture)
{
    [Fact]
    public async Task ATabSwitchesModelWhileAnotherKeepsItsOwn_AndABrokenModelShowsItsError()
    {
        var page = await app.OpenAsync("/");
        var other = await app.OpenAsync("/");
        Assert.Equal("rome-knowing", (await page.Locator("[data-testid=model-name]").InnerTextAsync()).Trim());
        Assert.Contains("MB of weights", await page.Locator("[data-testid=model-memory]").InnerTextAsync());

        await Select(page, "rome-tiny");
        await page.Locator("[data-testid=model-name]", new() { HasText = "rome-tiny" }).WaitForAsync();
        Assert.Contains("MB of weights", await page.Locator("[data-testid=model-memory]").InnerTextAsync());
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots.Folder, "models.png") });
        await other.ReloadAsync();
        await WebAppFixture.Interactive(other);
        Assert.Equal("rome-knowing", (await other.Locator("[data-testid=model-name]").InnerTextAsync()).Trim());

        // The rome-tiny tab traces on rome-tiny (its 6 layers, not rome-knowing's 8).
        await page.Locator("a[href='/trace']").ClickAsync();
        await page.Locator("[data-testid=trace-prompt]").FillAsync("Nintendo is located in");
        await page.Locator("[data-testid=trace-subject]").FillAsync("Nintendo");
        await page.Locator("[data-testid=trace-run]").ClickAsync();
        var map = page.Locator("[data-testid=trace-heatmap-hidden][data-state=done]");
        await map.WaitForAsync(new() { Timeout = 60_000 });
        Assert.Equal($"{4 * 6}", await map.GetAttributeAsync("data-cells"));

        await Select(page, "broken-model");
        await page.Locator("a[href='/']").First.ClickAsync();
        Assert.Contains("does not exist", await page.Locator("[data-testid=model-error]").InnerTextAsync());
        await Select(page, "rome-knowing");
        await page.Locator("[data-testid=model-name]", new() { HasText = "rome-knowing" }).WaitForAsync();
    }

    private static async Task Select(IPage page, string model)
    {
        await page.Locator("[data-testid=model-select]").ClickAsync();
        await page.Locator(".mud-popover-open .mud-list-item", new() { HasText = model }).First.ClickAsync();
    }
}
