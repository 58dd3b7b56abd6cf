namespace Rome.Web.Tests;

/// <summary>A test class that drives the browser: the pages each test opens are closed when it ends.</summary>
public abstract class BrowserTest(WebAppFixture app) : IAsyncLifetime
{
    public virtual Task InitializeAsync() => Task.CompletedTask;

    public virtual Task DisposeAsync() => app.CloseContextsAsync();
}
