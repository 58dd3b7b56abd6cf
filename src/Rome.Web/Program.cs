using MudBlazor.Services;
using Rome.Model;
using Rome.Web.Components;
using Rome.Web.Services;

ProcessMemory.LimitArenas(); // before libtorch allocates: see ProcessMemory
var builder = WebApplication.CreateBuilder(args);

// One appsettings.json at the repository root configures the web app and the CLI alike.
var rootSettings = RomeSettings.FindUpwards(builder.Environment.ContentRootPath) ?? RomeSettings.FindUpwards(AppContext.BaseDirectory);
if (rootSettings is not null) builder.Configuration.AddJsonFile(rootSettings, optional: false, reloadOnChange: false);
builder.Configuration.AddEnvironmentVariables().AddCommandLine(args);

var settings = new RomeSettings { BaseDirectory = rootSettings is null ? builder.Environment.ContentRootPath : Path.GetDirectoryName(rootSettings)! };
builder.Configuration.GetSection("Rome").Bind(settings);
builder.Services.AddSingleton(settings);
if (settings.TorchThreads > 0) TorchSharp.torch.set_num_threads(settings.TorchThreads);
builder.Services.AddSingleton<ModelLibrary>();
builder.Services.AddSingleton<JobQueue>();
builder.Services.AddHostedService(sp => sp.GetRequiredService<JobQueue>());
builder.Services.AddSingleton<TabStore>(); // tabs' edits across reloads
builder.Services.AddScoped<UserSession>();
builder.Services.AddSingleton(new Rome.Model.Editing.CovarianceCache(settings.CacheFolder, settings.DataFolder)); // C, shared by every tab and model
builder.Services.AddScoped<SessionJobs>();
builder.Services.AddScoped<AddressBar>();
builder.Services.AddScoped<EditStackService>();
builder.Services.AddScoped<TraceService>();
builder.Services.AddScoped<EditService>();
builder.Services.AddScoped<BatchEditService>();
builder.Services.AddScoped<PreviewService>();
builder.Services.AddScoped<EvaluationService>();
builder.Services.AddSingleton<Rome.Web.Services.Class.RoomRegistry>(); // class rooms, by code
builder.Services.AddScoped<Rome.Web.Services.Class.ClassService>();
builder.Services.AddScoped<Rome.Web.Services.Class.RoomEditService>();
builder.Services.AddRateLimiter(o =>
{
    o.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
    o.AddPolicy(Rome.Web.Services.Class.RoomRegistry.JoinPolicy, context => System.Threading.RateLimiting.RateLimitPartition.GetFixedWindowLimiter(
        context.Connection.RemoteIpAddress?.ToString() ?? "",
        _ => new System.Threading.RateLimiting.FixedWindowRateLimiterOptions { PermitLimit = settings.JoinsPerMinute, Window = TimeSpan.FromMinutes(1) }));
});
builder.Services.AddScoped<Microsoft.AspNetCore.Components.Server.Circuits.CircuitHandler, SessionCircuitHandler>();

// Blazor stops rendering to a browser that has not acknowledged this many render batches (10 by default). A class
// room's follower on a busy laptop would get the teacher's finished trace seconds late; the batches are small diffs.
builder.Services.AddRazorComponents().AddInteractiveServerComponents(o => o.MaxBufferedUnacknowledgedRenderBatches = 40);
builder.Services.AddHealthChecks(); // /healthz: what a proxy or an orchestrator probes
builder.Services.AddMudServices();

var app = builder.Build();

if (!app.Environment.IsDevelopment())
    app.UseExceptionHandler("/Error", createScopeForErrors: true);
if (settings.Replica is { Length: > 0 } replica)
    app.Use((context, next) => { context.Response.Headers["X-Rome-Replica"] = replica; return next(); });
app.UseStatusCodePagesWithReExecute("/not-found", createScopeForStatusCodePages: true);
app.UseRateLimiter(); // the join page, per address
app.UseAntiforgery();

app.MapStaticAssets();
app.MapHealthChecks("/healthz");
app.MapRazorComponents<App>().AddInteractiveServerRenderMode();

// Load the default model before the first request, so the first visitor does not wait for it; others load on first use.
_ = app.Services.GetRequiredService<ModelLibrary>().Default.Model;

app.Run();

/// <summary>Entry point, visible to the in-process test host.</summary>
public partial class Program;
