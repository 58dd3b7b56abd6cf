namespace Rome.Web.Tests;

[Collection("web")]
[Trait("Speed", "Slow")] // a browser against the running app
public class EvaluatePageTests(WebAppFixture fixture) : BrowserTest(fixture)
{
    [Fact]
    public async Task RunningAnEvaluationFillsTheTable()
    {
        var page = await app.OpenAsync("/evaluate");
        await page.Locator("[data-testid=eval-cases]").FillAsync("1");
        await page.Locator("[data-testid=eval-run]").ClickAsync();
        var table = page.Locator("[data-testid=eval-table][data-state=done]");
        await table.WaitForAsync(new() { Timeout = 120_000 });
        foreach (var method in new[] { "none", "rome", "ft-l" })
            Assert.Equal(1, await table.Locator($"tr[data-method='{method}']").CountAsync());
        // The unedited model keeps every neighbour: NS is 100.
        Assert.Contains("100.0", await table.Locator("tr[data-method='none']").InnerTextAsync());
    }

    [Fact]
    public async Task ACaseCountOverTheConfiguredLimitIsSaid_NotSilentlyClamped()
    {
        var page = await app.OpenAsync("/evaluate");
        await page.Locator("[data-testid=eval-cases]").FillAsync("100000");
        await page.Locator("[data-testid=eval-cases]").BlurAsync();
        // Rome:MaxEvalCases is 200 in appsettings.json: the field keeps what was typed and says the range.
        await page.Locator("[data-testid=eval-cases-range]").WaitForAsync();
        await Microsoft.Playwright.Assertions.Expect(page.Locator("[data-testid=eval-cases]")).ToHaveValueAsync("100000");
        await page.Locator("[data-testid=eval-run]").ClickAsync();
        await page.Locator("[data-testid=eval-job][data-state=error]").WaitForAsync();
        Assert.Contains("between 1 and 200", await page.Locator("[data-testid=eval-error]").InnerTextAsync());
    }

    [Fact]
    public async Task ManyEditsInOneModelDrawsTheMethodsCurvesAsCheckpointsArrive()
    {
        var page = await app.OpenAsync("/evaluate");
        await page.Locator(".mud-tab", new() { HasText = "Many edits in one model" }).ClickAsync();
        await page.Locator("[data-testid=seq-cases]").FillAsync("4");
        await page.Locator("[data-testid=seq-batch]").FillAsync("2");
        await page.Locator("[data-testid=seq-every]").FillAsync("2");
        await page.GetByLabel("AlphaEdit", new() { Exact = true }).UncheckAsync(new() { Force = true });   // MEMIT alone
        await page.Locator("[data-testid=seq-run]").ClickAsync();
        var table = page.Locator("[data-testid=seq-table][data-state=done]");
        await table.WaitForAsync(new() { Timeout = 120_000 });
        var row = table.Locator("tr[data-method=memit]");
        Assert.Equal(1, await row.CountAsync());
        Assert.StartsWith("MEMIT\t4\t", (await row.InnerTextAsync()).Trim());   // the last checkpoint: all four written
        Assert.Equal(1, await page.Locator("#seq-s .scatterlayer .trace").CountAsync());
    }
}
