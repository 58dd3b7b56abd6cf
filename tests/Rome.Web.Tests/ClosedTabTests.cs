namespace Rome.Web.Tests;

[Collection("web")]
[Trait("Speed", "Slow")] // a browser against the running app
public class ClosedTabTests(WebAppFixture fixture) : BrowserTest(fixture)
{
    [Fact]
    public async Task ClosingATabCancelsItsRunningJob()
    {
        var queue = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<Rome.Web.Services.JobQueue>(app.Services);
        var page = await app.OpenAsync("/evaluate");
        await page.Locator("[data-testid=eval-cases]").FillAsync("200");
        await page.Locator("[data-testid=eval-run]").ClickAsync();
        await page.Locator("[data-testid=eval-table]").WaitForAsync(new() { Timeout = 60_000 }); // it is running
        Assert.Equal(1, queue.Running);

        await page.CloseAsync(new() { RunBeforeUnload = true });
        await page.Context.CloseAsync();
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (queue.Running > 0 && waited.Elapsed < TimeSpan.FromSeconds(30)) await Task.Delay(100);
        Assert.Equal(0, queue.Running); // a 200-case evaluation would take minutes: it was cancelled
    }
}
