using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.Playwright;

namespace Rome.Web.Tests;

/// <summary>
/// Two app processes behind the YARP proxy (src/Rome.Proxy), on loopback, as the README's "Serving a class" runs
/// them: tabs spread over both replicas, each stays on its own through trace, edit and undo, and when one replica
/// dies its tabs are told so while the other's keep working.
/// </summary>
[Collection("web")]
[Trait("Speed", "Slow")] // a browser against the running app
public sealed class ReplicaTests(WebAppFixture fixture) : BrowserTest(fixture)
{
    private readonly Dictionary<string, Process> _replicas = new();
    private Process? _proxy;
    private string _url = "";

    public override async Task InitializeAsync()
    {
        var (web, proxy) = (Built("Rome.Web"), Built("Rome.Proxy"));
        var repository = Path.GetDirectoryName(Model.RomeSettings.FindUpwards(AppContext.BaseDirectory))!;
        var ports = new Dictionary<string, int>();
        foreach (var name in new[] { "a", "b" })
        {
            ports[name] = FreePort();
            // Development: static assets (MudBlazor's) are served from the build output, as with 'dotnet run'.
            _replicas[name] = Start(web, repository, "Development", $"--urls=http://127.0.0.1:{ports[name]}", $"--Rome:Replica={name}", "--Rome:Workers=1", "--Rome:TorchThreads=1");   // one libtorch thread each, as the tests' own app
        }
        var proxyPort = FreePort();
        _proxy = Start(proxy, Path.GetDirectoryName(proxy)!, "Production", $"--urls=http://127.0.0.1:{proxyPort}",
            $"--ReverseProxy:Clusters:rome:Destinations:a:Address=http://127.0.0.1:{ports["a"]}",
            $"--ReverseProxy:Clusters:rome:Destinations:b:Address=http://127.0.0.1:{ports["b"]}");
        _url = $"http://127.0.0.1:{proxyPort}";
        foreach (var port in ports.Values.Append(proxyPort)) await Answers($"http://127.0.0.1:{port}/");
        await ProxyServesBoth();
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        foreach (var p in _replicas.Values.Append(_proxy))
            if (p is { HasExited: false }) { p.Kill(entireProcessTree: true); p.WaitForExit(10_000); }
    }

    [Fact]
    public async Task RoomsAndTabsSpreadOverBothReplicas_StayOnTheirOwn_AndOutliveTheOther()
    {
        await AClassRoomsJoinLinkLeadsToTheReplicaThatHoldsIt();
        await app.CloseContextsAsync();
        var tabs = new List<(IPage Page, HashSet<string> Replicas)>();
        for (int i = 0; i < 2; i++)   // the proxy balances round robin: two new tabs land on both replicas
        {
            var context = await app.NewContextAsync(new() { ViewportSize = new() { Width = 1200, Height = 900 } });
            var page = await context.NewPageAsync();
            var seen = new HashSet<string>();
            page.Response += (_, r) => { if (r.Headers.TryGetValue("x-rome-replica", out var name)) lock (seen) seen.Add(name); };
            await page.GotoAsync(_url + "/edit?prompt=" + Uri.EscapeDataString("{} is located in") + "&subject=Nintendo&target=Germany");
            await WebAppFixture.Interactive(page);
            tabs.Add((page, seen));
        }

        // Edit and undo in every tab at once (one on each replica), through the proxy, and in the first trace the
        // edited model on another page.
        await Task.WhenAll(tabs.Select((t, i) => EditTraceAndUndo(t.Page, trace: i == 0)));
        // Each tab was served by one replica all along; the tabs used both.
        Assert.All(tabs, t => Assert.Single(t.Replicas));
        var onA = tabs.Where(t => t.Replicas.Single() == "a").Select(t => t.Page).ToList();
        var onB = tabs.Where(t => t.Replicas.Single() == "b").Select(t => t.Page).ToList();
        Assert.NotEmpty(onA);
        Assert.NotEmpty(onB);

        // Replica a dies: its tabs say their session ended; b's tabs trace on.
        _replicas["a"].Kill(entireProcessTree: true);
        foreach (var page in onA)
            await page.Locator("[data-testid=reconnect-rejected]").WaitForAsync(new() { Timeout = 90_000 });
        foreach (var page in onB)
        {
            await page.GotoAsync(_url + "/trace?prompt=" + Uri.EscapeDataString("Nintendo is located in") + "&subject=Nintendo&run=1");
            await page.Locator("[data-testid=trace-answer][data-state=done]").WaitForAsync(new() { Timeout = 120_000 });
        }
        Assert.All(tabs.Where(t => onB.Contains(t.Page)), t => Assert.Equal(["b"], t.Replicas));

        // Reload, as the dialog offers: the tab starts again on the surviving replica.
        var (moved, movedSeen) = tabs.First(t => onA.Contains(t.Page));
        lock (movedSeen) movedSeen.Clear();
        await moved.RunAndWaitForRequestAsync(() => moved.Locator("#components-reload-button").ClickAsync(), request => request.IsNavigationRequest);
        await WebAppFixture.Interactive(moved);
        Assert.False(await moved.Locator("#components-reconnect-modal").EvaluateAsync<bool>("m => m.open"));
        Assert.Equal(["b"], movedSeen);
    }

    private static async Task EditTraceAndUndo(IPage page, bool trace)
    {
        await page.Locator("[data-testid=edit-apply]").ClickAsync();
        await page.Locator("[data-testid=edit-after][data-state=done]").WaitForAsync(new() { Timeout = 120_000 });
        if (trace)
        {
            await page.Locator("[data-testid=edit-trace]").ClickAsync();
            await page.Locator("[data-testid=trace-answer][data-state=done]").WaitForAsync(new() { Timeout = 120_000 });
            Assert.Contains("Germany", await page.Locator("[data-testid=trace-answer]").InnerTextAsync());
            await page.GoBackAsync();
        }
        await page.Locator("[data-testid=edit-undo]").ClickAsync();
        await page.Locator("[data-testid=edit-history]", new() { HasText = "Redo brings back" }).WaitForAsync();
    }

    /// <summary>A new browser through the proxy at <paramref name="path"/>, with the replicas that served it, by request.</summary>
    private async Task<(IPage Page, List<(string Url, string Replica)> Served)> Open(string path)
    {
        var context = await app.NewContextAsync(new() { ViewportSize = new() { Width = 1200, Height = 900 } });
        var page = await context.NewPageAsync();
        var served = new List<(string, string)>();
        page.Response += (_, r) => { if (r.Headers.TryGetValue("x-rome-replica", out var name)) lock (served) served.Add((r.Url, name)); };
        await page.GotoAsync(_url + path);
        await WebAppFixture.Interactive(page);
        return (page, served);
    }

    /// <summary>A class room's join link leads to the replica that holds the room (run first in the test below, to start the replicas once).</summary>
    private async Task AClassRoomsJoinLinkLeadsToTheReplicaThatHoldsIt()
    {
        var (teacher, teacherServed) = await Open("/class");
        await teacher.Locator("[data-testid=room-start]").ClickAsync();
        var code = (await teacher.Locator("[data-testid=room-code]").InnerTextAsync()).Trim();
        var holder = teacherServed[0].Replica;
        Assert.Equal(8, code.Length);   // the replica's mark, then seven random characters
        Assert.Equal(Rome.Web.Services.Class.ReplicaMark.Of(holder), code[0]);

        // Two students open the Home page first (round robin: one lands on each replica), then type the code there.
        var students = new List<IPage>();
        var first = new List<string>();
        for (int i = 0; i < 2; i++)
        {
            var (student, served) = await Open("/");
            first.Add(served[0].Replica);
            await student.Locator("[data-testid=home-join-code]").FillAsync(code);
            await student.Locator("[data-testid=home-join]").ClickAsync();
            await student.WaitForURLAsync("**/join/**");
            await WebAppFixture.Interactive(student);
            await student.Locator("[data-testid=join-submit]").ClickAsync();
            await student.Locator("[data-testid=room-joined]").WaitForAsync();
            lock (served) Assert.Equal(holder, served.Last(s => s.Url.Contains("/join/")).Replica);
            students.Add(student);
        }
        Assert.Contains(first, r => r != holder);   // one of them had started on the other replica

        await teacher.GotoAsync(_url + "/trace?prompt=" + Uri.EscapeDataString("Nintendo is located in") + "&subject=Nintendo&run=1");
        await teacher.Locator("[data-testid=trace-answer][data-state=done]").WaitForAsync(new() { Timeout = 120_000 });
        foreach (var student in students)
            await student.Locator("[data-testid=room-follow] [data-testid=trace-heatmap-hidden][data-state=done]").WaitForAsync(new() { Timeout = 60_000 });
    }

    /// <summary>The same configuration's build of a sibling project (built with the solution).</summary>
    private static string Built(string project)
    {
        var output = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/'));   // tests/Rome.Web.Tests/bin/<config>/<tfm>
        var path = Path.Combine(output.Parent!.Parent!.Parent!.Parent!.Parent!.FullName, "src", project, "bin", output.Parent.Name, output.Name, project + ".dll");
        return File.Exists(path) ? path : throw new InvalidOperationException($"{path} is missing: build the solution first (dotnet build Rome.sln).");
    }

    private static Process Start(string dll, string directory, string environment, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(dll);
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["ASPNETCORE_ENVIRONMENT"] = environment;
        var process = Process.Start(info)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>
    /// The proxy's health checks marked a replica that was still loading its model as down; it is routed to again only
    /// after a probe succeeds (every 3 s). Until the proxy sends cookie-less requests to both, tabs would all land on one.
    /// </summary>
    private async Task ProxyServesBoth()
    {
        var seen = new HashSet<string>();
        using var http = new HttpClient(new HttpClientHandler { UseCookies = false });
        for (var clock = Stopwatch.StartNew(); clock.Elapsed < TimeSpan.FromSeconds(60); await Task.Delay(250))
        {
            var response = await http.GetAsync(_url + "/healthz");
            if (response.Headers.TryGetValues("X-Rome-Replica", out var names)) seen.UnionWith(names);
            if (seen.Count == 2) return;
        }
        throw new TimeoutException($"The proxy sent requests only to {string.Join(", ", seen)} for a minute.");
    }

    private static async Task Answers(string url)
    {
        using var http = new HttpClient();
        for (var clock = Stopwatch.StartNew(); clock.Elapsed < TimeSpan.FromSeconds(120); await Task.Delay(250))
        {
            try { if ((await http.GetAsync(url)).IsSuccessStatusCode) return; }
            catch (HttpRequestException) { }
        }
        throw new TimeoutException($"{url} did not answer within two minutes.");
    }
}
