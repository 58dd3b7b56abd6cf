using Microsoft.Extensions.Logging.Abstractions;
using Rome.Model;
using Rome.Model.Editing;
using Rome.Model.Tracing;
using Rome.Web.Services;

namespace Rome.Web.Tests;

/// <summary>The services the pages await, called as a page calls them, against the bundled model (no browser).</summary>
[Trait("Speed", "Slow")] // traces and edits the bundled model through the job queue
public sealed class ServiceTests(LibraryFixture fixture) : IClassFixture<LibraryFixture>, IAsyncLifetime
{
    private RomeSettings _settings = null!;
    private ModelLibrary _library = null!;
    private JobQueue _queue = null!;
    private UserSession _user = null!;
    private SessionJobs _jobs = null!;
    private Rome.Model.Editing.CovarianceCache _covariances = null!;
    private EditService Editor => new(_user, _jobs, _covariances, new EditStackService(_user));

    public async Task InitializeAsync()
    {
        (_settings, _library) = (fixture.Settings, fixture.Library);
        _queue = new JobQueue(_settings, NullLogger<JobQueue>.Instance);
        await _queue.StartAsync(CancellationToken.None);
        _user = new UserSession(_library);
        _jobs = new SessionJobs(_user, _queue);
        _covariances = new Rome.Model.Editing.CovarianceCache(_settings.CacheFolder, _settings.DataFolder);
    }

    public async Task DisposeAsync()
    {
        _user.Dispose();
        _covariances.Dispose();
        await _queue.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task TheTraceServiceStreamsTheGridsAndSeversTheHiddenState()
    {
        var events = new List<TraceEvent>();
        var outcome = await new TraceService(_user, _jobs).TraceAsync(
            new TraceInput("Nintendo is located in", "Nintendo", [TraceKind.Hidden, TraceKind.Mlp], 3, "3s", WithEdits: false, Sever: true),
            progress: new SyncProgress<TraceEvent>(events.Add));
        Assert.IsType<TraceStarted>(events[0]);
        Assert.Equal([TraceKind.Hidden, TraceKind.Mlp], outcome.Result.Scores.Keys.Order());
        Assert.Single(events.OfType<TraceSevering>());
        var severed = Assert.IsType<SeveredSummary>(outcome.Severed);
        var last = outcome.Result.Setup.Subject.Last;
        // The plain curve is the grid's own last-subject-token row, as an indirect effect.
        Assert.Equal(Enumerable.Range(0, outcome.Result.Setup.Layers).Select(l => outcome.Result.IndirectEffect(TraceKind.Hidden, last, l)), severed.Plain);
        Assert.Null(_jobs.Current(TraceService.Label));
    }

    [Fact]
    public async Task BadInputIsARomeExceptionBeforeAnythingIsQueued()
    {
        var tracer = new TraceService(_user, _jobs);
        await Assert.ThrowsAsync<RomeException>(() => tracer.TraceAsync(new TraceInput("Nintendo is located in", "Sony", [TraceKind.Hidden], 3, "3s", false, false)));
        await Assert.ThrowsAsync<RomeException>(() => tracer.TraceAsync(new TraceInput("Nintendo is located in", "Nintendo", [TraceKind.Hidden], 0, "3s", false, false)));
        await Assert.ThrowsAsync<RomeException>(() => new EvaluationService(_user, _jobs, _covariances).EvaluateAsync(5, []));
        Assert.Throws<RomeException>(() => new EditRequest("{} is located in", "Nintendo", "")); // a request is checked when it is made
        Assert.Equal(0, _queue.Running);
    }

    [Fact]
    public async Task AnEditChangesThePreview_WhichIsRememberedPerEditStack()
    {
        var preview = new PreviewService(_user, _jobs);
        var before = await preview.PreviewAsync("{} is located in", "Nintendo");
        Assert.StartsWith("\"Nintendo is located in\" → Japan", before);
        Assert.Same(before, await preview.PreviewAsync("{} is located in", "Nintendo"));

        var updates = new List<EditUpdate>();
        var outcome = await Editor.EditAsync(new EditRequest("{} is located in", "Nintendo", "Germany"),
            ["Nintendo, which is located in"], [], new SyncProgress<EditUpdate>(updates.Add));
        Assert.Equal("Japan", outcome.Request.OldTarget);
        Assert.Equal(["prompt", "paraphrase"], outcome.After.Prompts.Select(p => p.Kind));
        Assert.True(outcome.After.Prompts[0].NewTarget > outcome.Before.Prompts[0].NewTarget);
        Assert.Contains(updates, u => u is EditStep);
        Assert.Single(_user.Edits.Edits);

        var after = await preview.PreviewAsync("{} is located in", "Nintendo");
        Assert.StartsWith("\"Nintendo is located in\" → Germany", after);
        _user.Edits.Undo();
        Assert.Equal(before, await preview.PreviewAsync("{} is located in", "Nintendo"));
        var version = _user.Edits.Version;
        _user.Edits.Redo();
        Assert.True(_user.Edits.Version > version); // every change to the stack is a new version, so a new preview
        Assert.StartsWith("\"Nintendo is located in\" → Germany", await preview.PreviewAsync("{} is located in", "Nintendo"));
    }
}
