using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.Playwright;

// A class on one server: N browser tabs at once, each tracing one fact and then editing it, as a student would.
// Prints per round the failures, click-to-done waits, server CPU seconds per tab and the server's RSS before, at
// its peak and after the round. The server is another process (bench/web-load.sh starts it and runs this at
// lower CPU priority); its PID gives CPU time and RSS from /proc.
//   dotnet run --project bench/Rome.Bench.Web -- --url http://127.0.0.1:5080 --pid PID --tabs 5,10,30 [--model DIR] [--settle 15] [--max-trace 50]

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
