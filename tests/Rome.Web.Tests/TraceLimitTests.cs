using Microsoft.Playwright;

namespace Rome.Web.Tests;

[Collection("web")]
[Trait("Speed", "Slow")] // a browser against the running app
public class TraceLimitTests(WebAppFixture fixture) : BrowserTest(fixture)
{
    [Fact]
    public async Task APromptOverTheConfiguredTokenLimitIsRefused()
    {
        var page = await app.OpenAsync("/trace");
        var longPrompt = string.Concat(Enumerable.Repeat("Nintendo is located in Japan and ", 12)) + "Nintendo is located in";
        await page.Locator("[data-testid=trace-prompt]").FillAsync(longPrompt);
        await page.Locator("[data-testid=trace-subject]").FillAsync("Nintendo");
        await page.Locator("[data-testid=trace-run]").ClickAsync();
        await page.Locator("[data-testid=trace-error]").WaitForAsync();
        Assert.Contains("limit is 48", await page.Locator("[data-testid=trace-error]").InnerTextAsync()); // Rome:MaxPromptTokens
    }
}
