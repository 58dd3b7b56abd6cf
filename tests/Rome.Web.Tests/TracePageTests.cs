using Microsoft.Playwright;

namespace Rome.Web.Tests;

[Collection("web")]
[Trait("Speed", "Slow")] // a browser against the running app
public class TracePageTests(WebAppFixture app)
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
        await page.Locator("[aria-label='Large type']").ClickAsync();
        await page.WaitForTimeoutAsync(300);
        Assert.True(await Size(".mud-typography-h4") > heading * 1.15, "the heading must grow");
        Assert.True(await Size(".mud-typography-body1") > body * 1.15, "body text must grow");
        Assert.True(await Size(".mud-typography-h4") > await Size(".mud-typography-body1"), "headings stay larger than text");
    }

    [Fact]
    public async Task AtProjectorSizeEachHeatmapFitsTheScreen_AndTheDarkThemeColoursTheCharts()
    {
        var page = await app.OpenAsync("/trace?prompt=Nintendo is located in&subject=Nintendo&run=1");
        await page.SetViewportSizeAsync(1024, 768);
        await page.Locator("[data-testid=trace-answer][data-state=done]").WaitForAsync(new() { Timeout = 60_000 });
        foreach (var kind in new[] { "hidden", "mlp", "attn" })
        {
            var chart = page.Locator($"[data-testid=trace-heatmap-{kind}] .main-svg").First;
            await chart.WaitForAsync(new() { Timeout = 30_000 });
            var box = (await chart.BoundingBoxAsync())!;
            Assert.True(box.Width <= 1024 / 2.0 && box.Height <= 768 - 100, $"{kind}: {box.Width} x {box.Height} does not fit a 1024 x 768 screen beside the others");
        }

        string Background() => "() => getComputedStyle(document.querySelector('[data-testid=trace-heatmap-hidden] .main-svg')).backgroundColor";
        string TextFill() => "() => getComputedStyle(document.querySelector('[data-testid=trace-heatmap-hidden] .main-svg text')).fill";
        Assert.Equal("rgb(255, 255, 255)", await page.EvaluateAsync<string>(Background()));
        await page.Locator("[aria-label='Toggle theme']").ClickAsync();
        await page.WaitForFunctionAsync(Background() + " !== 'rgb(255, 255, 255)'");
        Assert.Equal("rgba(0, 0, 0, 0)", await page.EvaluateAsync<string>(Background()));   // the page's dark shows through
        Assert.Equal("rgb(224, 224, 224)", await page.EvaluateAsync<string>(TextFill()));
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
