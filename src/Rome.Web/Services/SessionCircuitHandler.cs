using Microsoft.AspNetCore.Components.Server.Circuits;

namespace Rome.Web.Services;

/// <summary>
/// Cancels a tab's jobs when it goes away. Blazor keeps a disconnected circuit for minutes in case the user comes
/// back, so waiting for its disposal would leave a closed tab's trace or evaluation running: instead, a connection
/// that stays down for <see cref="Grace"/> cancels the jobs (the tab can still queue new ones if it reconnects).
/// </summary>
public sealed class SessionCircuitHandler(UserSession session) : CircuitHandler
{
    public static TimeSpan Grace { get; set; } = TimeSpan.FromSeconds(10);

    private CancellationTokenSource? _down;

    public override Task OnConnectionDownAsync(Circuit circuit, CancellationToken cancellationToken)
    {
        var down = new CancellationTokenSource();
        Interlocked.Exchange(ref _down, down)?.Cancel();
        _ = Task.Delay(Grace, down.Token).ContinueWith(t => { if (!t.IsCanceled) session.CancelJobs(); }, TaskScheduler.Default);
        return Task.CompletedTask;
    }

    public override Task OnConnectionUpAsync(Circuit circuit, CancellationToken cancellationToken)
    {
        Interlocked.Exchange(ref _down, null)?.Cancel();
        return Task.CompletedTask;
    }

    public override Task OnCircuitClosedAsync(Circuit circuit, CancellationToken cancellationToken)
    {
        session.CancelJobs();
        return Task.CompletedTask;
    }
}
