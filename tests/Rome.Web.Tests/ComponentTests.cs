using Bunit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using MudBlazor.Services;
using Rome.Model;
using Rome.Web.Components.Pages;
using Rome.Web.Services;

namespace Rome.Web.Tests;

/// <summary>Components rendered by bUnit against the real bundled model (no browser).</summary>
public class ComponentTests : IClassFixture<LibraryFixture>, IAsyncLifetime
{
    private readonly BunitContext _ctx = new();
    private readonly ModelLibrary _library;

    public ComponentTests(LibraryFixture fixture)
    {
        _library = fixture.Library;
        _ctx.Services.AddSingleton(fixture.Settings);
        _ctx.Services.AddSingleton(_library);
        _ctx.Services.AddScoped<UserSession>();
        _ctx.Services.AddMudServices();
        _ctx.JSInterop.Mode = JSRuntimeMode.Loose;
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _ctx.DisposeAsync();

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
        using var broken = new ModelLibrary(new RomeSettings { ModelPath = "/nonexistent/model" }, NullLogger<ModelHost>.Instance);
        _ctx.Services.AddSingleton(broken);
        var home = _ctx.Render<Home>();
        Assert.Contains("does not exist", home.Find("[data-testid=model-error]").TextContent);
    }

    /// <summary>A tab's edits belong to the model they were made on: switching model shows that model's own stack.</summary>
    [Fact]
    public void EachModelKeepsItsOwnEditStackInATab()
    {
        using var user = new UserSession(_library);
        Assert.Equal(["rome-knowing", "rome-tiny"], user.Models.Select(m => m.Name).Take(2));
        var knowing = user.Edits;
        Assert.Same(knowing.Model, user.Host.Require());
        user.SelectModel("rome-tiny");
        Assert.Equal("rome-tiny", user.Host.Name);
        Assert.NotSame(knowing, user.Edits);
        Assert.Equal("rome-tiny", user.Edits.Model.Name);
        user.SelectModel("rome-knowing");
        Assert.Same(knowing, user.Edits);
        Assert.Throws<RomeException>(() => user.SelectModel("no-such-model"));
    }
}
