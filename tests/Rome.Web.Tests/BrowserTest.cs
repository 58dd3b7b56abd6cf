namespace Rome.Web.Tests;

/// <summary>A test class that drives the browser: the pages each test opens are closed when it ends.</summary>
public abstract class BrowserTest(WebAppFixture fixture) : IAsyncLifetime
{
    /// <summary>The app and its browser, shared by the "web" collection.</summary>
    protected WebAppFixture app => fixture;

    public virtual Task InitializeAsync() => Task.CompletedTask;

    public virtual Task DisposeAsync() => fixture.CloseContextsAsync();
}
