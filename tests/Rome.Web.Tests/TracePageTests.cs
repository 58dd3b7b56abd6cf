using Microsoft.Playwright;

namespace Rome.Web.Tests;

[Collection("web")]
[Trait("Speed", "Slow")] // a browser against the running app
public class TracePageTests(WebAppFixture fixture) : BrowserTest(fixture)
{
    /// <summary>The bundled model's layer count, from its config.json.</summary>
    private static int BundledLayers => System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(
        Path.GetDirectoryName(Screenshots.Folder)!, "..", "models", "rome-knowing", "config.json"))).RootElement.GetProperty("n_layer").GetInt32();

    [Fact]
    public async Task HomeNamesTheBundledModel()
    {
        var page = await app.OpenAsync("/");
        Assert.Equal("rome-knowing", (await page.Locator("[data-testid=model-name]").InnerTextAsync()).Trim());
    }

    [Fact]
    public async Task TwoSettingsSideBySide_NoiseAgainstTokenReplacementWithLogitDifference()
    {
        var page = await app.OpenAsync("/trace?prompt=The%20headquarter%20of%20Nintendo%20is%20in&subject=Nintendo&compare=str,logit-diff,denoise,patch&run=1");
        await page.Locator("[data-testid=trace-compare][data-state=done]").WaitForAsync(new() { Timeout = 90_000 });
        var differences = await page.Locator("[data-testid=trace-differences]").InnerTextAsync();
        Assert.Contains("replaces the subject's tokens by other subjects'", differences);
        Assert.Contains("instead of p(answer)", differences);
        var right = page.Locator("[data-testid=trace-compare]");
        Assert.Equal("str, logit-diff, denoise, patch", await right.Locator("[data-testid=trace-settings]").GetAttributeAsync("data-options"));
        Assert.Contains("replaced by", await right.Locator("[data-testid=trace-answer]").InnerTextAsync());
        Assert.Contains("logit difference", await right.Locator("[data-testid=trace-answer]").InnerTextAsync());
        // Both traces drawn in full, in charts of their own.
        var left = await WebAppFixture.DrawnValues(page, "heatmap-Hidden");
        var replaced = await WebAppFixture.DrawnValues(page, "compare-heatmap-Hidden");
        Assert.Equal(left.Length, replaced.Length);
        Assert.NotEqual(left[^1][0], replaced[^1][0]);
        Assert.Contains("compare=str,logit-diff,denoise,patch", Uri.UnescapeDataString(page.Url));   // the link traces both again
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots.Folder, "trace-compare.png"), FullPage = true });
    }

    [Fact]
    public async Task AttributionPatchingBesidePatching_SaysHowWellTheyAgree()
    {
        var page = await app.OpenAsync("/trace?prompt=The%20headquarter%20of%20Nintendo%20is%20in&subject=Nintendo&method=attribution&compare=noise,prob,denoise,patch&run=1");
        await page.Locator("[data-testid=trace-compare][data-state=done]").WaitForAsync(new() { Timeout = 90_000 });
        var differences = await page.Locator("[data-testid=trace-differences]").InnerTextAsync();
        Assert.Contains("patches each cell instead of estimating it from gradients", differences);
        Assert.Matches(@"Agreement with patching, rank correlation per grid: Hidden -?\d\.\d\d", differences);
        Assert.Contains("estimated to first order", await page.Locator("[data-testid=trace-settings]").First.InnerTextAsync());
    }

    [Fact]
    public async Task BadSettingsInTheAddressAreSaidPlainly()
    {
        var page = await app.OpenAsync("/trace?prompt=The%20headquarter%20of%20Nintendo%20is%20in&subject=Nintendo&corrupt=blur&run=1");
        Assert.Contains("Unknown corruption 'blur' (noise or str)", await page.Locator("[data-testid=trace-error]").InnerTextAsync());
        Assert.Equal("error", await page.Locator("[data-testid=trace-job]").GetAttributeAsync("data-state"));
    }

    [Fact]
    public async Task TracingAKnownFactFillsAllThreeHeatmaps()
    {
        var page = await app.OpenAsync("/trace");
        await page.Locator("[data-testid=trace-prompt]").FillAsync("The headquarter of Nintendo is in");
        await page.Locator("[data-testid=trace-subject]").FillAsync("Nintendo");
        await page.Locator("[data-testid=trace-run]").ClickAsync();
        foreach (var kind in new[] { "hidden", "mlp", "attn" })
        {
            var map = page.Locator($"[data-testid=trace-heatmap-{kind}][data-state=done]");
            await map.WaitForAsync(new() { Timeout = 60_000 });
            Assert.Equal($"{7 * BundledLayers}", await map.GetAttributeAsync("data-cells")); // 7 tokens x every layer
        }
        await page.Locator("[data-testid=trace-answer][data-state=done]").WaitForAsync();
        Assert.Contains("Kyoto", await page.Locator("[data-testid=trace-answer]").InnerTextAsync());
        // Plotly draws after the final state arrives: wait for the drawn heatmaps (their cells are SVG paths).
        foreach (var kind in new[] { "hidden", "mlp", "attn" })
            await page.Locator($"[data-testid=trace-heatmap-{kind}] .main-svg").First.WaitForAsync(new() { Timeout = 30_000 });
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots.Folder, "trace.png"), FullPage = true });
        Assert.Contains("run=1", page.Url);   // a reload or a shared link traces this fact again
        Assert.Contains("subject=Nintendo", page.Url);
    }

    /// <summary>
    /// A chart whose plotly.js did not load (the first two requests for it fail, as on a flaky classroom network) is
    /// drawn when a later draw loads it: no chart waits on a lost call or stays blank.
    /// </summary>
    [Fact]
    public async Task ChartsAreDrawnEvenWhenPlotlyFailsToLoadAtFirst()
    {
        var page = await (await app.NewContextAsync()).NewPageAsync();
        var refused = 0;
        await page.RouteAsync("**/plotly-3.7.0.min.js", async route =>
        {
            if (Interlocked.Increment(ref refused) <= 2) await route.AbortAsync();
            else await route.ContinueAsync();
        });
        await page.GotoAsync(app.BaseUrl + "/trace?prompt=The%20headquarter%20of%20Nintendo%20is%20in&subject=Nintendo&run=1");
        var drawn = await WebAppFixture.DrawnValues(page, "heatmap-Hidden");
        Assert.Equal(7, drawn.Length);   // every token's row, every cell drawn
        Assert.True(refused > 2, $"plotly.js was requested {refused} times");
    }

    /// <summary>"Sever MLP / attention" adds this fact's Figure 4: its severed curves and the share each severing removes.</summary>
    [Fact]
    public async Task SeveringShowsThisFactsFigure4()
    {
        var page = await app.OpenAsync("/trace?prompt=Nintendo%20is%20located%20in&subject=Nintendo");
        await page.Locator("[data-testid=trace-sever]").First.ClickAsync(new() { Force = true });
        await page.Locator("[data-testid=trace-run]").ClickAsync();
        var summary = page.Locator("[data-testid=trace-severed]");
        await summary.WaitForAsync(new() { Timeout = 60_000 });
        Assert.Matches(@"MLPs at that token removes -?\d+\.\d %", await summary.InnerTextAsync());
        await page.Locator("#trace-severed-chart .main-svg").First.WaitForAsync(new() { Timeout = 30_000 });
        Assert.Equal("done", await page.Locator("[data-testid=trace-job]").GetAttributeAsync("data-state"));
    }

    /// <summary>The bundled model's averaged trace (kept beside it) is shown below a single fact's, with the severed summary.</summary>
    [Fact]
    public async Task TheModelsAveragedTraceIsShownBesideASingleFact()
    {
        var page = await app.OpenAsync("/trace");
        var panel = page.Locator("[data-testid=trace-average]");
        await panel.WaitForAsync();
        Assert.Contains("100 facts", await panel.InnerTextAsync());
        Assert.Contains("Knowing: MLP at the last subject token peaks at layer 4", await page.Locator("[data-testid=trace-average-sites]").InnerTextAsync());
        Assert.Contains("removes 56.9%", (await page.Locator("[data-testid=trace-average-severed]").InnerTextAsync()).Replace(" %", "%"));
        await page.Locator("#average-Hidden .main-svg").First.WaitForAsync(new() { Timeout = 30_000 });
        await page.Locator("#average-severed .main-svg").First.WaitForAsync(new() { Timeout = 30_000 });
        await panel.ScreenshotAsync(new() { Path = Path.Combine(Screenshots.Folder, "trace-average.png") });
    }

    [Fact]
    public async Task LargeTypeMakesHeadingsAndTextLargerOnAProjectorScreen()
    {
        var page = await app.OpenAsync("/trace");
        await page.SetViewportSizeAsync(1024, 768);
        async Task<double> Size(string selector) => double.Parse(
            (await page.Locator(selector).First.EvaluateAsync<string>("e => getComputedStyle(e).fontSize")).Replace("px", ""),
            System.Globalization.CultureInfo.InvariantCulture);
        var (heading, body) = (await Size(".mud-typography-h4"), await Size(".mud-typography-body1"));
        await page.Locator("[data-testid=large-type]").ClickAsync();
        await page.WaitForTimeoutAsync(300);
        Assert.True(await Size(".mud-typography-h4") > heading * 1.15, "the heading must grow");
        Assert.True(await Size(".mud-typography-body1") > body * 1.15, "body text must grow");
        Assert.True(await Size(".mud-typography-h4") > await Size(".mud-typography-body1"), "headings stay larger than text");
    }

    /// <summary>A user's own cancel is news, not an error: the page says so calmly, and the grids it left are labelled partial.
    /// The trace is long (about 20 s alone: the tokens after the subject are the ones traced), so the Cancel lands before it ends.</summary>
    [Fact]
    public async Task ACancelIsShownAsCancelled_WithItsPartialGridsLabelled()
    {
        var page = await app.OpenAsync("/trace?prompt=The headquarter of Nintendo, the company that made the Game Boy, the Wii and many other famous consoles and games over the years, is in&subject=Nintendo");
        await page.Locator("[data-testid=trace-samples]").FillAsync("50");
        await page.Locator("[data-testid=trace-run]").ClickAsync();
        await page.WaitForFunctionAsync("() => Number(document.querySelector('[data-testid=trace-heatmap-hidden]')?.dataset.cells ?? 0) > 0", null, new() { Timeout = 60_000 });
        await page.Locator("[data-testid=trace-cancel]").ClickAsync();
        await page.Locator("[data-testid=trace-job][data-state=cancelled]").WaitForAsync(new() { Timeout = 30_000, State = WaitForSelectorState.Attached });
        Assert.Contains("You cancelled", await page.Locator("[data-testid=trace-cancelled]").InnerTextAsync());
        Assert.Equal(0, await page.Locator("[data-testid=trace-error]").CountAsync());
        Assert.Contains("mud-alert-text-info", await page.Locator("[data-testid=trace-cancelled]").GetAttributeAsync("class") ?? "");
        var states = await page.Locator("[data-testid^=trace-heatmap-]").EvaluateAllAsync<string[]>("els => els.map(e => e.dataset.state)");
        Assert.Contains("partial", states);
        Assert.DoesNotContain("running", states);
        Assert.Contains("Partial", await page.Locator("[data-testid=trace-partial]").First.InnerTextAsync());
    }

    [Fact]
    public async Task SampleCountsOutOfRangeAreSaid_NotClamped_AndAFailedTraceShowsError()
    {
        var page = await app.OpenAsync("/trace");
        var samples = page.Locator("[data-testid=trace-samples]");
        await samples.FillAsync("10000");
        await samples.BlurAsync();
        await page.Locator("[data-testid=trace-samples-range]").WaitForAsync();
        Assert.Contains("between 1 and 50", await page.Locator("[data-testid=trace-samples-range]").InnerTextAsync());
        Assert.Equal("10000", await samples.InputValueAsync());   // kept as typed, not silently changed
        await page.Locator("[data-testid=trace-run]").ClickAsync();
        await page.Locator("[data-testid=trace-job][data-state=error]").WaitForAsync();

        await samples.FillAsync("2");
        await samples.BlurAsync();
        await page.Locator("[data-testid=trace-samples-range]").WaitForAsync(new() { State = WaitForSelectorState.Detached });
        await page.Locator("[data-testid=trace-noise]").FillAsync("Infinity");
        await page.Locator("[data-testid=trace-noise]").BlurAsync();
        await page.Locator("[data-testid=trace-run]").ClickAsync();
        await page.Locator("[data-testid=trace-error]", new() { HasText = "noise" }).WaitForAsync();
        Assert.Equal("error", await page.Locator("[data-testid=trace-job]").GetAttributeAsync("data-state"));

        await page.Locator("[data-testid=trace-noise]").FillAsync("3s");
        await page.Locator("[data-testid=trace-noise]").BlurAsync();
        await page.Locator("[data-testid=trace-run]").ClickAsync();
        await page.Locator("[data-testid=trace-job][data-state=done]").WaitForAsync(new() { Timeout = 60_000, State = WaitForSelectorState.Attached });
    }

    [Fact]
    public async Task ASubjectMissingFromThePromptShowsItsMessageAndThePageKeepsWorking()
    {
        var page = await app.OpenAsync("/trace");
        await page.Locator("[data-testid=trace-prompt]").FillAsync("Nintendo is located in");
        await page.Locator("[data-testid=trace-subject]").FillAsync("Toyota");
        await page.Locator("[data-testid=trace-run]").ClickAsync();
        await page.Locator("[data-testid=trace-error]").WaitForAsync();
        Assert.Contains("does not occur", await page.Locator("[data-testid=trace-error]").InnerTextAsync());

        await page.Locator("[data-testid=trace-subject]").FillAsync("Nintendo");
        await page.Locator("[data-testid=trace-run]").ClickAsync();
        await page.Locator("[data-testid=trace-answer][data-state=done]").WaitForAsync(new() { Timeout = 60_000 });
    }
}
