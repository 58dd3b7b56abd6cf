using System.Globalization;
using Microsoft.Playwright;

namespace Rome.Web.Tests;

/// <summary>
/// The pages on a projector: 1024 x 768 with large type, in the light and the dark theme. Measured in the browser:
/// element boxes (no table wider than its place, no number wrapped, heatmaps wide enough to read), chart text sizes and
/// computed colours.
/// </summary>
[Collection("web")]
[Trait("Speed", "Slow")] // a browser against the running app
public class ProjectorTests(WebAppFixture fixture) : BrowserTest(fixture)
{
    /// <summary>1024 x 768 with large type (the tab keeps its view as it moves between pages).</summary>
    private static async Task<IPage> Projector(IPage page)
    {
        await page.SetViewportSizeAsync(1024, 768);
        await page.Locator("[data-testid=large-type]").ClickAsync();
        await page.WaitForTimeoutAsync(300);
        return page;
    }

    private static async Task Dark(IPage page, bool on)
    {
        if (await page.Locator(".rome-dark").CountAsync() > 0 != on) await page.Locator("[data-testid=dark-theme]").ClickAsync();
        await page.Locator(".rome-dark").WaitForAsync(new() { State = on ? WaitForSelectorState.Attached : WaitForSelectorState.Detached });
        await page.WaitForTimeoutAsync(500); // the charts redraw in the new theme
    }

    /// <summary>Tables wider than the box they sit in (clipped or scrolled), as their first words.</summary>
    private const string OverflowingTables = """
        () => [...document.querySelectorAll('table')].filter(t => {
            const place = t.closest('.mud-table-container') ?? t.parentElement;
            return t.scrollWidth > place.clientWidth + 1 || t.getBoundingClientRect().right > document.documentElement.clientWidth + 1;
        }).map(t => t.innerText.slice(0, 60))
        """;

    /// <summary>Number cells whose text lies on more than one line (a wrapped "99 %"): the distinct tops of its line boxes.</summary>
    private const string WrappedNumbers = """
        () => [...document.querySelectorAll('td.num')].filter(td => {
            const range = document.createRange();
            range.selectNodeContents(td);
            return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size > 1;
        }).map(td => td.innerText)
        """;

    [Fact]
    public async Task InBothThemesTheEditAndEvaluateTablesFit_AndNoNumberWraps()
    {
        var page = await Projector(await app.OpenAsync("/edit?prompt=Chanel, founded in&subject=Chanel&target=Milan"));
        await page.Locator("[data-testid=edit-apply]").ClickAsync();
        await page.Locator("[data-testid=edit-after][data-state=done]").WaitForAsync(new() { Timeout = 120_000 });
        Assert.Equal(2, await page.Locator(".rome-report table, table.rome-report").CountAsync());
        foreach (var dark in new[] { false, true })
        {
            await Dark(page, dark);
            Assert.Empty(await page.EvaluateAsync<string[]>(OverflowingTables));
            Assert.Empty(await page.EvaluateAsync<string[]>(WrappedNumbers));
            if (!dark) await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots.Folder, "edit-projector.png"), FullPage = true });
        }

        await page.GotoAsync(app.BaseUrl + "/evaluate");   // the tab keeps large type and the dark theme
        await WebAppFixture.Interactive(page);
        await page.Locator(".rome-dark.rome-large").WaitForAsync(new() { State = WaitForSelectorState.Attached });
        await page.Locator("[data-testid=eval-cases]").FillAsync("2");
        foreach (var method in new[] { "ROME", "Constrained fine-tuning (FT+L)" })   // the unedited model alone fills every column
            await page.GetByLabel(method, new() { Exact = true }).UncheckAsync(new() { Force = true });
        await page.Locator("[data-testid=eval-run]").ClickAsync();
        await page.Locator("[data-testid=eval-table][data-state=done]").WaitForAsync(new() { Timeout = 120_000 });
        Assert.Contains("GE and RS", await page.Locator("[data-testid=eval-no-generation]").InnerTextAsync());
        foreach (var dark in new[] { true, false })
        {
            await Dark(page, dark);
            Assert.Empty(await page.EvaluateAsync<string[]>(OverflowingTables));
            Assert.Empty(await page.EvaluateAsync<string[]>(WrappedNumbers));
            var filter = await page.Locator("[data-testid=eval-sweep]").EvaluateAsync<string>("e => getComputedStyle(e).filter");
            Assert.Equal(dark, filter.Contains("invert"));   // the sweep image's dark text turns light on a dark page
        }
    }

    [Fact]
    public async Task InBothThemesEachHeatmapIsAtLeast200PixelsWide_ChartTextGrows_AndChartsFollowTheTheme()
    {
        var page = await Projector(await app.OpenAsync("/trace?prompt=Nintendo is located in&subject=Nintendo"));
        await page.Locator("[data-testid=trace-run]").ClickAsync();
        await page.Locator("[data-testid=trace-answer][data-state=done]").WaitForAsync(new() { Timeout = 60_000 });
        // The trace put the fact into the address: the colour bars' gradients followed it (else they go blank).
        Assert.Contains("run=1", page.Url);
        var fills = await page.EvaluateAsync<string[]>("() => [...document.querySelectorAll('.js-plotly-plot .cbfill')].map(e => e.style.fill)");
        Assert.NotEmpty(fills);
        Assert.All(fills, f => Assert.Contains(page.Url.Split('#')[0], f));
        foreach (var dark in new[] { false, true })
        {
            await Dark(page, dark);
            foreach (var kind in new[] { "Hidden", "Mlp", "Attn" })
            {
                var chart = $"document.getElementById('heatmap-{kind}')";
                await page.WaitForFunctionAsync($"() => {chart}?._fullLayout?._size?.w > 0");
                var width = await page.EvaluateAsync<double>($"() => {chart}._fullLayout._size.w");
                Assert.True(width >= 200, $"{kind}: the heatmap's drawing area is {width} px wide");
                Assert.True(await page.EvaluateAsync<double>($"() => {chart}._fullLayout.font.size") >= 18, "chart text grows with large type");
                var box = (await page.Locator($"#heatmap-{kind}").BoundingBoxAsync())!;
                Assert.True(box.X >= 0 && box.X + box.Width <= 1024, $"{kind} fits the screen's width");
            }
            var empty = await page.EvaluateAsync<string>("() => document.querySelector('#heatmap-Hidden linearGradient stop').getAttribute('stop-color')");
            var tickText = await page.EvaluateAsync<string>("() => getComputedStyle(document.querySelector('#heatmap-Hidden .xtick text')).fill");
            var lines = await page.EvaluateAsync<string[]>("() => [...document.querySelectorAll('#average-severed .scatterlayer .js-line')].map(l => getComputedStyle(l).stroke)");
            Assert.Equal(3, lines.Length);
            if (dark)
            {
                Assert.NotEqual(255, Rgb(empty)[0]);                           // no white blocks on a dark page
                Assert.True(Luminance(tickText) > 0.6, tickText);              // light axis text
                Assert.All(lines, l => Assert.True(Luminance(l) > 0.35, l));   // lines light enough to see on the dark page
            }
            else
            {
                Assert.Equal([255, 255, 255], Rgb(empty));
                Assert.True(Luminance(tickText) < 0.4, tickText);
            }
            await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots.Folder, dark ? "trace-projector-dark.png" : "trace-projector.png") });
        }
    }

    private static int[] Rgb(string css) =>
        css.Replace("rgba", "").Replace("rgb", "").Trim('(', ')').Split(',').Take(3).Select(x => (int)double.Parse(x.Trim(), CultureInfo.InvariantCulture)).ToArray();

    /// <summary>Relative luminance (0 black, 1 white) of a CSS colour, as WCAG defines it.</summary>
    private static double Luminance(string css)
    {
        double Channel(int c) { var s = c / 255.0; return s <= 0.03928 ? s / 12.92 : Math.Pow((s + 0.055) / 1.055, 2.4); }
        var rgb = Rgb(css);
        return 0.2126 * Channel(rgb[0]) + 0.7152 * Channel(rgb[1]) + 0.0722 * Channel(rgb[2]);
    }
}
