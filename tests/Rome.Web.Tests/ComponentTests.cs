using Bunit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using MudBlazor.Services;
using Rome.Model;
using Rome.Web.Components.Pages;
using Rome.Web.Services;

namespace Rome.Web.Tests;

/// <summary>Components rendered by bUnit against the real bundled model (no browser).</summary>
public class ComponentTests : IAsyncLifetime
{
    private readonly BunitContext _ctx = new();
    private ModelHost? _host;

    public Task InitializeAsync()
    {
        var root = Path.GetDirectoryName(RomeSettings.FindUpwards(AppContext.BaseDirectory))!;
        var settings = RomeSettings.FromFile(Path.Combine(root, "appsettings.json"));
        _host = new ModelHost(settings, NullLogger<ModelHost>.Instance);
        _ctx.Services.AddSingleton(settings);
        _ctx.Services.AddSingleton(_host);
        _ctx.Services.AddMudServices();
        _ctx.JSInterop.Mode = JSRuntimeMode.Loose;
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _ctx.DisposeAsync();
        _host?.Dispose();
    }

    [Fact]
    public void HomeNamesTheModelAndOffersKnownFactsAsStartingPoints()
    {
        var home = _ctx.Render<Home>();
        Assert.Equal("rome-knowing", home.Find("[data-testid=model-name]").TextContent.Trim());
        var traceLinks = home.FindAll("a[href^='/trace?']");
        Assert.Equal(6, traceLinks.Count);
        Assert.All(traceLinks, a => Assert.Contains("run=1", a.GetAttribute("href")));
        Assert.Equal(6, home.FindAll("a[href^='/edit?']").Count);
    }

    [Fact]
    public void HomeShowsTheLoadErrorWhenTheModelCannotLoad()
    {
        var broken = new ModelHost(new RomeSettings { ModelPath = "/nonexistent/model" }, NullLogger<ModelHost>.Instance);
        _ctx.Services.AddSingleton(broken);
        var home = _ctx.Render<Home>();
        Assert.Contains("does not exist", home.Find("[data-testid=model-error]").TextContent);
    }
}
