using Microsoft.Playwright;

namespace Rome.Web.Tests;

/// <summary>A tab keeps its edits across a reload and a typed link, asks before leaving with unsaved edits, and stays apart from other tabs.</summary>
[Collection("web")]
[Trait("Speed", "Slow")] // a browser against the running app
public class TabStateTests(WebAppFixture fixture) : BrowserTest(fixture)
{
    [Fact]
    public async Task AReloadAndATypedLinkKeepTheTabsEdits_AnotherTabHasNone()
    {
        var page = await app.OpenAsync("/edit?prompt={} is located in&subject=Nintendo&target=Germany");
        page.Dialog += (_, dialog) => dialog.AcceptAsync(); // "leave this page?": yes
        await page.Locator("[data-testid=edit-apply]").ClickAsync();
        await page.Locator("[data-testid=edit-after][data-state=done]").WaitForAsync(new() { Timeout = 120_000 });
        Assert.Equal("function", await page.EvaluateAsync<string>("() => typeof window.onbeforeunload")); // leaving would ask

        await page.ReloadAsync();
        await WebAppFixture.Interactive(page);
        Assert.Contains("Germany", await page.Locator("[data-testid=edit-history]").InnerTextAsync());

        await page.GotoAsync(app.BaseUrl + "/trace?prompt=Nintendo is located in&subject=Nintendo");   // a link typed in the same tab
        await WebAppFixture.Interactive(page);
        await page.Locator("text=Edited model (1 edit)").WaitForAsync();

        // A second tab of the same browser is another tab: no edits.
        var other = await page.Context.NewPageAsync();
        await other.GotoAsync(app.BaseUrl + "/edit");
        await WebAppFixture.Interactive(other);
        Assert.Contains("None yet", await other.Locator("[data-testid=edit-history]").InnerTextAsync());

        // Exported edits are saved: leaving no longer asks.
        await page.GotoAsync(app.BaseUrl + "/edit");
        await WebAppFixture.Interactive(page);
        await page.Locator("[data-testid=edit-export]").ClickAsync();
        await page.WaitForFunctionAsync("() => window.onbeforeunload === null");
    }
}
