using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.Playwright;

// A class on one server: N browser tabs at once, each tracing one fact and then editing it, as a student would; or
// (--class N) a class room: a teacher and N followers, the trace and edit computed once (see ClassRounds).
// Prints per round the failures, click-to-done waits, server CPU seconds per tab and the server's RSS before, at
// its peak and after the round. The server is another process (bench/web-load.sh starts it and runs this at
// lower CPU priority); its PID gives CPU time and RSS from /proc.
//   dotnet run --project bench/Rome.Bench.Web -- --url http://127.0.0.1:5080 --pid PID --tabs 5,10,30 [--model DIR] [--settle 15] [--max-trace 50]
//   ... --class 30 [--rounds 3] [--log SERVER-LOG]

var options = Args(args);
var url = options.GetValueOrDefault("url", "http://127.0.0.1:5080").TrimEnd('/');
var pid = int.Parse(options["pid"], CultureInfo.InvariantCulture);
var rounds = options.GetValueOrDefault("tabs", "5,10,30").Split(',').Select(int.Parse).ToList();
var settle = TimeSpan.FromSeconds(double.Parse(options.GetValueOrDefault("settle", "15"), CultureInfo.InvariantCulture));
var timeout = TimeSpan.FromSeconds(double.Parse(options.GetValueOrDefault("timeout", "300"), CultureInfo.InvariantCulture));
var cases = JsonDocument.Parse(File.ReadAllText(Path.Combine(options.GetValueOrDefault("model", "models/rome-knowing"), "counterfact.json")))
    .RootElement.EnumerateArray().Select(c => c.GetProperty("requested_rewrite")).Select(r => (
        Prompt: r.GetProperty("prompt").GetString()!, Subject: r.GetProperty("subject").GetString()!,
        Target: r.GetProperty("target_new").GetProperty("str").GetString()!)).ToList();

using var playwright = await Playwright.CreateAsync();
await using var browser = await playwright.Chromium.LaunchAsync(new()
{
    ExecutablePath = Environment.GetEnvironmentVariable("CHROMIUM_PATH") is { Length: > 0 } p ? p : "/usr/bin/chromium", // web-load.sh sets it
    Headless = true,
    Args = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

if (options.TryGetValue("class", out var classSize))
{
    await ClassRounds(int.Parse(classSize, CultureInfo.InvariantCulture), int.Parse(options.GetValueOrDefault("rounds", "3"), CultureInfo.InvariantCulture));
    return;
}

Console.WriteLine("| tabs | failures | trace, click to done: median / max | edit, median / max | server CPU s per tab (trace + edit) | server RSS before → peak → after (MB) |");
Console.WriteLine("|---|---|---|---|---|---|");
var offset = 0;
foreach (var tabs in rounds)
{
    var (rssBefore, cpuBefore) = (Rss(pid), Cpu(pid));
    var peak = rssBefore;
    using var sampling = new CancellationTokenSource();
    var sampler = Task.Run(async () =>
    {
        while (!sampling.IsCancellationRequested) { peak = Math.Max(peak, Rss(pid)); await Task.Delay(200); }
    });
    var results = await Task.WhenAll(Enumerable.Range(0, tabs).Select(i => Student(cases[(offset + i) % cases.Count])));
    offset += tabs;
    var cpu = Cpu(pid) - cpuBefore;
    await Task.Delay(settle);
    sampling.Cancel();
    await sampler;
    var failures = results.Count(r => r.Error is not null);
    foreach (var error in results.Select(r => r.Error).OfType<string>().GroupBy(e => e)) Console.Error.WriteLine($"  failure ({error.Count()}x): {error.Key}");
    string Waits(IEnumerable<double> s) => s.ToList() is { Count: > 0 } w ? $"{Median(w):F1} s / {w.Max():F1} s" : "-";
    Console.WriteLine($"| {tabs} | {failures} | {Waits(results.Where(r => r.Trace > 0).Select(r => r.Trace))} | {Waits(results.Where(r => r.Edit > 0).Select(r => r.Edit))} | " +
                      $"{cpu / tabs:F2} | {rssBefore:N0} → {peak:N0} → {Rss(pid):N0} |");
}

// The largest trace a tab may ask for (MaxPromptTokens, MaxTraceSamples): what it costs, and what it leaves behind.
if (options.ContainsKey("max-trace"))
{
    var (before, cpuBefore) = (Rss(pid), Cpu(pid));
    var peak = before;
    using var sampling = new CancellationTokenSource();
    var sampler = Task.Run(async () => { while (!sampling.IsCancellationRequested) { peak = Math.Max(peak, Rss(pid)); await Task.Delay(100); } });
    var context = await browser.NewContextAsync();
    var page = await context.NewPageAsync();
    await page.GotoAsync($"{url}/trace");
    await page.Locator("[data-testid=interactive][data-state=yes]").WaitForAsync(new() { State = WaitForSelectorState.Attached });
    var prompt = string.Join(" ", Enumerable.Repeat("In the old days, people said that", 5)) + " Nintendo is located in";
    await page.Locator("[data-testid=trace-prompt]").FillAsync(prompt);
    await page.Locator("[data-testid=trace-subject]").FillAsync("Nintendo");
    await page.Locator("[data-testid=trace-samples]").FillAsync(options["max-trace"]);
    await page.Locator("[data-testid=trace-samples]").BlurAsync();
    var clock = Stopwatch.StartNew();
    await page.Locator("[data-testid=trace-run]").ClickAsync();
    string? error = null;
    try { await Done(page, "trace-job"); } catch (Exception e) { error = e.Message.Split('\n')[0]; }
    var seconds = clock.Elapsed.TotalSeconds;
    // What was traced, as the page says it: the samples, and the cells of each grid (tokens x layers).
    var traced = error is not null ? "" : System.Text.RegularExpressions.Regex.Match(await page.Locator("[data-testid=trace-answer]").InnerTextAsync(), @"\d+ samples").Value + ", cells " +
        string.Join(" + ", await page.Locator("[data-testid^=trace-heatmap-]").EvaluateAllAsync<string[]>("hs => hs.map(h => h.dataset.cells)"));
    await context.CloseAsync();
    await Task.Delay(settle);
    sampling.Cancel();
    await sampler;
    Console.WriteLine($"\nOne trace of the longest prompt ({traced}): {(error ?? "done")} in {seconds:F1} s, server CPU {Cpu(pid) - cpuBefore:F1} s, RSS {before:N0} → {peak:N0} → {Rss(pid):N0} MB");
}

// A class room: a teacher and N followers, three rounds. The teacher's trace and edit are computed once and drawn on
// every follower's screen: how long after the teacher's own page (in the browsers, and as the server logs it), what
// the round costs the server against the teacher's trace and edit alone, how long the class's batch of N facts takes
// to reach every screen, and the server's memory after each round.
async Task ClassRounds(int followers, int rounds)
{
    var fact = cases[0];
    var filled = fact.Prompt.Replace("{}", fact.Subject);
    var traceUrl = $"{url}/trace?prompt={Uri.EscapeDataString(filled)}&subject={Uri.EscapeDataString(fact.Subject)}&run=1";
    var editUrl = $"{url}/edit?prompt={Uri.EscapeDataString(fact.Prompt)}&subject={Uri.EscapeDataString(fact.Subject)}&target={Uri.EscapeDataString(fact.Target)}";
    var log = options.GetValueOrDefault("log");

    // The teacher alone, no room: the CPU a trace and an edit cost (the second time: the first loads C and the like).
    var cpuAlone = 0.0;
    for (int warm = 0; warm < 2; warm++)
    {
        var alone = await NewPage();
        cpuAlone = Cpu(pid);
        await alone.GotoAsync(traceUrl);
        await Done(alone, "trace-job");
        await TeacherEdit(alone);
        cpuAlone = Cpu(pid) - cpuAlone;
        await alone.Context.CloseAsync();
    }
    Console.WriteLine($"The teacher's trace and edit alone: {cpuAlone:F2} server CPU-s.\n");
    Console.WriteLine("| round | followers | failures | trace on followers' screens after the teacher's: median / max (browser) | edit: median / max (browser) | sent, server log: max | server CPU for the round / the teacher's alone | class batch of N facts on every screen | RSS before → peak → after (MB) |");
    Console.WriteLine("|---|---|---|---|---|---|---|---|---|");
    for (int round = 1; round <= rounds; round++)
    {
        var (rssBefore, logFrom) = (Rss(pid), log is null ? 0 : new FileInfo(log).Length);
        var peak = rssBefore;
        using var sampling = new CancellationTokenSource();
        var sampler = Task.Run(async () => { while (!sampling.IsCancellationRequested) { peak = Math.Max(peak, Rss(pid)); await Task.Delay(200); } });
        var failures = new List<string>();
        var teacher = await NewPage();
        await teacher.GotoAsync($"{url}/class");
        await Interactive(teacher);
        await teacher.ClickAsync("[data-testid=room-start]");
        var code = (await teacher.Locator("[data-testid=room-code]").InnerTextAsync()).Trim();
        var students = (await Task.WhenAll(Enumerable.Range(0, followers).Select(async i =>
        {
            var page = await NewPage();
            await page.GotoAsync($"{url}/join/{code}");
            await Interactive(page);
            await page.Locator("[data-testid=join-name]").FillAsync($"S{i + 1}");
            await page.ClickAsync("[data-testid=join-submit]");
            await page.Locator("[data-testid=room-joined]").WaitForAsync();
            return page;
        }))).ToList();
        await teacher.Locator($"[data-testid=room-members][data-following='{followers}']").WaitForAsync(new() { State = WaitForSelectorState.Attached });

        // The trace, then the edit, computed once: each follower's screen fully drawn, against the teacher's.
        var cpuRound = Cpu(pid);
        await teacher.GotoAsync(traceUrl);
        var traceDrawn = students.Select(p => DrawnAt(p, TraceDrawn("[data-testid=room-follow][data-showing=trace] "))).ToList();
        var teacherTrace = await DrawnAt(teacher, TraceDrawn(""));
        var traceLags = await Lags(traceDrawn, teacherTrace, failures, students);
        var editDrawn = students.Select(p => DrawnAt(p, Shown("[data-testid=room-follow][data-showing=edit] [data-testid=edit-after][data-state=done] table"))).ToList();
        await TeacherEdit(teacher);
        var teacherEdit = await DrawnAt(teacher, Shown("[data-testid=edit-after][data-state=done] table"));
        var editLags = await Lags(editDrawn, teacherEdit, failures, students);
        cpuRound = Cpu(pid) - cpuRound;

        // The class's batch: every follower proposes a fact, the teacher accepts them all and writes them.
        await teacher.GotoAsync($"{url}/class");
        await Interactive(teacher);
        await Task.WhenAll(students.Select(async (p, i) =>
        {
            var c = cases[1 + i % (cases.Count - 1)];
            await p.Locator("[data-testid=submit-prompt]").FillAsync(c.Prompt);
            await p.Locator("[data-testid=submit-subject]").FillAsync(c.Subject);
            await p.Locator("[data-testid=submit-target]").FillAsync(c.Target);
            await p.ClickAsync("[data-testid=submit-send]");
        }));
        await teacher.Locator($"[data-testid=room-submissions][data-count='{followers}']").WaitForAsync();
        for (int i = 0; i < followers; i++)
            await teacher.Locator("[data-testid=room-submissions] tbody tr").Nth(i).Locator("[data-testid=submission-accept]").ClickAsync();
        var clock = Stopwatch.StartNew();
        await teacher.ClickAsync("[data-testid=room-apply]");
        await Task.WhenAll(students.Select(p => p.Locator($"[data-testid=room-batch][data-facts='{followers}']").WaitForAsync(new() { Timeout = (float)timeout.TotalMilliseconds })));
        var batchSeconds = clock.Elapsed.TotalSeconds;

        await teacher.ClickAsync("[data-testid=room-close]");
        await Task.WhenAll(students.Select(p => p.Locator("[data-testid=room-closed]").WaitForAsync()));
        foreach (var p in students.Append(teacher)) await p.Context.CloseAsync();
        await Task.Delay(settle);
        sampling.Cancel();
        await sampler;
        var sent = log is null ? [] : SentDelays(log, logFrom);
        foreach (var f in failures.GroupBy(f => f)) Console.Error.WriteLine($"  failure ({f.Count()}x): {f.Key}");
        string Spread(List<double> xs) => xs.Count > 0 ? $"{Median(xs):F2} s / {xs.Max():F2} s" : "-";
        Console.WriteLine($"| {round} | {followers} | {failures.Count} | {Spread(traceLags)} | {Spread(editLags)} | {(sent.Count > 0 ? $"{sent.Max():F0} ms ({sent.Count} pages)" : "-")} | " +
                          $"{cpuRound:F2} / {cpuAlone:F2} = {cpuRound / cpuAlone:F2} | {batchSeconds:F1} s | {rssBefore:N0} → {peak:N0} → {Rss(pid):N0} |");
    }

    async Task<IPage> NewPage()
    {
        var context = await browser.NewContextAsync(new() { ViewportSize = new() { Width = 1200, Height = 900 } });
        context.SetDefaultTimeout((float)timeout.TotalMilliseconds);
        return await context.NewPageAsync();
    }

    async Task TeacherEdit(IPage page)
    {
        await page.GotoAsync(editUrl);
        await Interactive(page);
        await page.Locator("[data-testid=edit-apply]:not([disabled])").WaitForAsync();
        await page.ClickAsync("[data-testid=edit-apply]");
        await Done(page, "edit-job");
    }

    // The browser's clock (ms since the epoch; every page runs on this machine) when the condition (JavaScript) first holds.
    static async Task<double> DrawnAt(IPage page, string condition)
    {
        var at = await page.WaitForFunctionAsync($"() => ({condition}) ? Date.now() : null", null, new() { PollingInterval = 50 });
        return await at.JsonValueAsync<double>();
    }

    static string Shown(string selector) => $"document.querySelector({JsonSerializer.Serialize(selector)})";

    // A trace is drawn when its last grid (attention) is done and the browser's chart holds every cell's value.
    static string TraceDrawn(string within) =>
        Shown(within + "[data-testid=trace-heatmap-attn][data-state=done]") + " && document.getElementById('heatmap-Attn')?.data?.[0]?.z?.flat().every(v => v !== null)";

    static async Task<List<double>> Lags(List<Task<double>> drawn, double teacherAt, List<string> failures, List<IPage> pages)
    {
        var lags = new List<double>();
        for (int i = 0; i < drawn.Count; i++)
        {
            try { lags.Add((await drawn[i] - teacherAt) / 1000); }
            catch (Exception e) { failures.Add(e.Message.Split('\n')[0] + await Showing(pages[i])); }
        }
        return lags;
    }

    // What a follower's page showed when it was not drawn in time: the followed screen, its charts, the connection.
    static async Task<string> Showing(IPage page)
    {
        try
        {
            return " [" + await page.EvaluateAsync<string>(
                "() => { const f = document.querySelector('[data-testid=room-follow]'); if (!f) return 'no followed screen'; " +
                "return 'showing ' + f.dataset.showing + ' ' + f.dataset.state + '; ' + [...f.querySelectorAll('[data-testid^=trace-heatmap-]')].map(h => { " +
                "const c = h.querySelector('.js-plotly-plot'); const z = c?.data?.[0]?.z; " +
                "return h.dataset.testid + ' ' + h.dataset.state + ' ' + h.dataset.cells + (c ? ' chart, ' + (z ? z.flat().filter(v => v === null).length + ' empty' : 'no z') : ' no chart'); }).join('; ') " +
                "+ (document.querySelector('#components-reconnect-modal')?.open ? '; reconnect dialog open' : ''); }") + "]";
        }
        catch (Exception) { return " [page not readable]"; }
    }

    // The delays the server logged (FollowedScreen) since byte offset `from` of its log.
    static List<double> SentDelays(string path, long from)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        stream.Seek(from, SeekOrigin.Begin);
        var text = new StreamReader(stream).ReadToEnd();
        return System.Text.RegularExpressions.Regex.Matches(text, @"was sent the teacher's finished \w+ (\d+) ms")
            .Select(m => double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToList();
    }
}

static Task Interactive(IPage page) =>
    page.Locator("[data-testid=interactive][data-state=yes]").WaitForAsync(new() { State = WaitForSelectorState.Attached });

// One student: open a fact's trace (it starts on opening), wait for it, then edit the fact and wait for the edit.
async Task<(double Trace, double Edit, string? Error)> Student((string Prompt, string Subject, string Target) fact)
{
    var context = await browser.NewContextAsync(new() { ViewportSize = new() { Width = 1200, Height = 900 } });
    context.SetDefaultTimeout((float)timeout.TotalMilliseconds); // a loaded machine loads pages slowly: that is not a failure
    double trace = 0, edit = 0;
    IPage? page = null;
    try
    {
        page = await context.NewPageAsync();
        var filled = fact.Prompt.Replace("{}", fact.Subject);
        var clock = Stopwatch.StartNew();
        await page.GotoAsync($"{url}/trace?prompt={Uri.EscapeDataString(filled)}&subject={Uri.EscapeDataString(fact.Subject)}&run=1");
        await Done(page, "trace-job");
        trace = clock.Elapsed.TotalSeconds;

        await page.GotoAsync($"{url}/edit?prompt={Uri.EscapeDataString(fact.Prompt)}&subject={Uri.EscapeDataString(fact.Subject)}&target={Uri.EscapeDataString(fact.Target)}");
        await page.Locator("[data-testid=interactive][data-state=yes]").WaitForAsync(new() { State = WaitForSelectorState.Attached });
        await page.Locator("[data-testid=edit-apply]:not([disabled])").WaitForAsync(new() { Timeout = (float)timeout.TotalMilliseconds });
        clock.Restart();
        await page.ClickAsync("[data-testid=edit-apply]");
        await Done(page, "edit-job");
        edit = clock.Elapsed.TotalSeconds;
        return (trace, edit, null);
    }
    catch (Exception e) { return (trace, edit, e.Message.Split('\n')[0] + (page is null ? "" : await Where(page))); }
    finally { await context.CloseAsync(); }
}

// What a failed tab showed: its jobs' states and whether it had lost its connection.
async Task<string> Where(IPage page)
{
    try
    {
        return " [" + await page.EvaluateAsync<string>(
            "() => [...document.querySelectorAll('[data-testid$=-job]')].map(j => j.dataset.testid + ' ' + j.dataset.state + ': ' + j.innerText.slice(0, 80)).join('; ')" +
            " + (document.querySelector('#components-reconnect-modal')?.open ? '; reconnect dialog open' : '')") + "]";
    }
    catch (Exception) { return " [page not readable]"; }
}

// A job is done when its data-state says so; error or cancelled is a failure.
async Task Done(IPage page, string job)
{
    var state = await page.WaitForFunctionAsync(
        $"() => {{ const s = document.querySelector('[data-testid={job}]')?.dataset.state; return s === 'done' || s === 'error' || s === 'cancelled' ? s : null; }}",
        null, new() { Timeout = (float)timeout.TotalMilliseconds, PollingInterval = 100 });
    var value = await state.JsonValueAsync<string>();
    if (value != "done") throw new InvalidOperationException($"{job} ended {value}: " + await page.Locator($"[data-testid={job}]").InnerTextAsync());
}

static double Median(List<double> xs) { xs.Sort(); return xs.Count % 2 == 1 ? xs[xs.Count / 2] : (xs[xs.Count / 2 - 1] + xs[xs.Count / 2]) / 2; }

// Resident memory in MB, from /proc/PID/status.
static double Rss(int pid) => File.ReadLines($"/proc/{pid}/status").Where(l => l.StartsWith("VmRSS:"))
    .Select(l => double.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024).First();

// User plus system CPU seconds, from /proc/PID/stat (fields 14 and 15, in clock ticks of 1/100 s).
static double Cpu(int pid)
{
    var stat = File.ReadAllText($"/proc/{pid}/stat");
    var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
    return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0;
}

static Dictionary<string, string> Args(string[] args)
{
    var d = new Dictionary<string, string>();
    for (int i = 0; i + 1 < args.Length; i += 2) d[args[i].TrimStart('-')] = args[i + 1];
    return d;
}
