using Microsoft.Extensions.Logging.Abstractions;
using Rome.Model;
using Rome.Web.Services;

namespace Rome.Web.Tests;

public class JobQueueTests
{
    private static JobQueue Queue(int perSession = 3) => new(new RomeSettings { Workers = 1, MaxQueuedJobsPerSession = perSession }, NullLogger<JobQueue>.Instance);

    [Fact]
    public async Task SessionsTakeTurns_AndPositionsFollowThatOrder()
    {
        var queue = Queue();
        var order = new List<string>();
        var gate = new TaskCompletionSource();
        Job Add(string session, string label, Func<Task>? body = null) =>
            queue.Enqueue(session, label, async _ => { lock (order) order.Add(label); if (body is not null) await body(); }, CancellationToken.None);

        var blocker = Add("a", "a1", () => gate.Task);
        var a2 = Add("a", "a2");
        var a3 = Add("a", "a3");
        var b1 = Add("b", "b1");
        using var stop = new CancellationTokenSource();
        await queue.StartAsync(stop.Token);
        while (!blocker.Started) await Task.Delay(10);
        Assert.Equal(0, queue.PositionOf(b1));   // b goes next: sessions take turns
        Assert.Equal(1, queue.PositionOf(a2));
        Assert.Equal(2, queue.PositionOf(a3));
        gate.SetResult();
        await Task.WhenAll(a2.Completion, a3.Completion, b1.Completion);
        Assert.Equal(["a1", "b1", "a2", "a3"], order);
        await queue.StopAsync(CancellationToken.None);
    }

    /// <summary>A job's place in the queue only goes down: tabs arriving later, or coming back with new work, queue behind it.</summary>
    [Fact]
    public async Task AWaitingJobsPlaceOnlyGoesDown()
    {
        var queue = Queue();
        var gate = new TaskCompletionSource();
        var running = queue.Enqueue("a", "trace", _ => gate.Task, CancellationToken.None);
        await queue.StartAsync(CancellationToken.None);
        while (!running.Started) await Task.Delay(10);
        var b = queue.Enqueue("b", "trace", _ => Task.CompletedTask, CancellationToken.None);
        var c = queue.Enqueue("c", "trace", _ => Task.CompletedTask, CancellationToken.None);
        var places = new List<int> { queue.PositionOf(c) };
        foreach (var newcomer in new[] { "d", "e", "a" })   // new tabs, and the running tab's next job
        {
            queue.Enqueue(newcomer, "trace", _ => Task.CompletedTask, CancellationToken.None);
            places.Add(queue.PositionOf(c));
        }
        Assert.Equal([1, 1, 1, 1], places);   // only b is ahead of c, whoever comes after
        Assert.Equal(0, queue.PositionOf(b));
        gate.SetResult();
        await c.Completion;
        await queue.StopAsync(CancellationToken.None);
    }

    /// <summary>The wait a tab is shown: the recent run times of the jobs ahead (none known yet: no estimate).</summary>
    [Fact]
    public async Task TheWaitEstimateGrowsWithTheJobsAhead_AndIsWithheldForUnknownWork()
    {
        var queue = Queue();
        await queue.StartAsync(CancellationToken.None);
        for (int i = 0; i < 2; i++)
            await queue.Enqueue("warm", "trace", _ => Task.Delay(100), CancellationToken.None).Completion;

        var gate = new TaskCompletionSource();
        var running = queue.Enqueue("a", "trace", _ => gate.Task, CancellationToken.None);
        while (!running.Started) await Task.Delay(10);
        var second = queue.Enqueue("b", "trace", _ => Task.CompletedTask, CancellationToken.None);
        var third = queue.Enqueue("c", "trace", _ => Task.CompletedTask, CancellationToken.None);
        var unknown = queue.Enqueue("d", "evaluate", _ => Task.CompletedTask, CancellationToken.None);
        var last = queue.Enqueue("e", "trace", _ => Task.CompletedTask, CancellationToken.None);

        Assert.Equal(TimeSpan.Zero, queue.EstimatedWait(running));
        var (w2, w3) = (queue.EstimatedWait(second)!.Value, queue.EstimatedWait(third)!.Value);
        Assert.True(w3 > w2 && w3 - w2 >= TimeSpan.FromSeconds(0.09), $"{w2} then {w3}");   // one more trace ahead
        Assert.Null(queue.EstimatedWait(last));   // an evaluation, never run yet, is ahead of it
        gate.SetResult();
        await Task.WhenAll(second.Completion, third.Completion, unknown.Completion, last.Completion);
        await queue.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task ASessionsQueueIsLimited_AndClosingItCancelsWhatIsQueued()
    {
        var queue = Queue(perSession: 2);
        using var closed = new CancellationTokenSource();
        var first = queue.Enqueue("a", "1", _ => Task.CompletedTask, closed.Token);
        var second = queue.Enqueue("a", "2", _ => Task.CompletedTask, closed.Token);
        Assert.Contains("already have", Assert.Throws<RomeException>(() => queue.Enqueue("a", "3", _ => Task.CompletedTask, closed.Token)).Message);
        closed.Cancel();   // the tab closed before any worker started
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => first.Completion);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => second.Completion);
        queue.Enqueue("a", "4", _ => Task.CompletedTask, CancellationToken.None); // room again
    }

    [Fact]
    public async Task AFailingJobReportsItsErrorAndTheQueueGoesOn()
    {
        var queue = Queue();
        using var stop = new CancellationTokenSource();
        await queue.StartAsync(stop.Token);
        var bad = queue.Enqueue("a", "bad", _ => throw new RomeException("nope"), CancellationToken.None);
        var good = queue.Enqueue("a", "good", _ => Task.CompletedTask, CancellationToken.None);
        Assert.Equal("nope", (await Assert.ThrowsAsync<RomeException>(() => bad.Completion)).Message);
        await good.Completion;
        await queue.StopAsync(CancellationToken.None);
    }
}
