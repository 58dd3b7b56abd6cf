using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace Rome.Web.Tests;

/// <summary>The web app on a loopback port (in-process, real Kestrel) and Debian's Chromium driven by Playwright.</summary>
public sealed class WebAppFixture : IAsyncLifetime
{
    private WebApplicationFactory<Program>? _factory;
    private IPlaywright? _playwright;

    public string BaseUrl { get; private set; } = "";
    public IServiceProvider Services => _factory!.Services;
    public IBrowser Browser { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        _factory = new WebApplicationFactory<Program>().WithWebHostBuilder(b => b.UseSetting("Rome:Workers", "1").UseSetting("Rome:Models:broken-model", "/nonexistent/model"));
        _factory.UseKestrel(o => o.Listen(System.Net.IPAddress.Loopback, 0));
        _factory.StartServer();
        BaseUrl = _factory.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses
            .First().Replace("[::]", "127.0.0.1").Replace("0.0.0.0", "127.0.0.1").TrimEnd('/');

        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = FindChromium(),
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        });
    }

    /// <summary>
    /// Chromium for the browser tests: CHROMIUM_PATH, Debian's /usr/bin/chromium, chromium on PATH, or a browser
    /// Playwright installed (null lets Playwright use its own); otherwise one line saying how to get one.
    /// </summary>
    private static string? FindChromium()
    {
        if (Environment.GetEnvironmentVariable("CHROMIUM_PATH") is { Length: > 0 } configured)
            return File.Exists(configured) ? configured : throw new InvalidOperationException($"CHROMIUM_PATH is {configured}, which does not exist.");
        var onPath = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, "chromium"));
        if (onPath.Prepend("/usr/bin/chromium").FirstOrDefault(File.Exists) is { } found) return found;
        var playwright = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "ms-playwright");
        if (Directory.Exists(playwright) && Directory.EnumerateDirectories(playwright, "chromium*").Any()) return null;
        throw new InvalidOperationException("No Chromium for the browser tests: install Debian's (apt-get install chromium) or Playwright's (pwsh playwright.ps1 install chromium), or set CHROMIUM_PATH.");
    }

    private readonly List<IBrowserContext> _contexts = [];

    /// <summary>A fresh browser context (its own circuit, so its own edit session) on a page at <paramref name="path"/>.</summary>
    public async Task<IPage> OpenAsync(string path)
    {
        var context = await NewContextAsync();
        var page = await context.NewPageAsync();
        await page.GotoAsync(BaseUrl + path);
        await Interactive(page);
        return page;
    }

    /// <summary>A fresh browser context, closed with the others when the test ends (<see cref="BrowserTest"/>).</summary>
    public async Task<IBrowserContext> NewContextAsync(BrowserNewContextOptions? options = null)
    {
        var context = await Browser.NewContextAsync(options ?? new() { ViewportSize = new() { Width = 1400, Height = 1000 } });
        lock (_contexts) _contexts.Add(context);
        return context;
    }

    /// <summary>Closes every context a test opened: a page left open keeps its circuit, its timers and its charts busy.</summary>
    public async Task CloseContextsAsync()
    {
        IBrowserContext[] open;
        lock (_contexts) { open = [.. _contexts]; _contexts.Clear(); }
        foreach (var context in open)
        {
            try { await context.CloseAsync(); }
            catch (PlaywrightException) { } // closed by the test already
        }
    }

    /// <summary>Waits until the page runs on its circuit: before that, typing goes into the prerendered page and is lost.</summary>
    /// <summary>A chart's values as the browser holds them, once every cell is drawn (a streamed chart's last values).</summary>
    public static async Task<double[][]> DrawnValues(IPage page, string chartId)
    {
        var z = await page.WaitForFunctionAsync(
            $"() => {{ const z = document.getElementById('{chartId}')?.data?.[0]?.z; return z && z.flat().every(v => v !== null) ? z : null; }}",
            null, new() { Timeout = 60_000 });
        return await z.JsonValueAsync<double[][]>();
    }

    public static Task Interactive(IPage page) =>
        page.Locator("[data-testid=interactive][data-state=yes]").WaitForAsync(new() { State = WaitForSelectorState.Attached, Timeout = 60_000 });

    public async Task DisposeAsync()
    {
        if (Browser is not null) await Browser.DisposeAsync();
        _playwright?.Dispose();
        if (_factory is not null) await _factory.DisposeAsync();
    }
}
