using System.Text.Json;
using System.Text.Json.Serialization;

namespace Rome.Cli;

/// <summary>Output helpers: JSON for scripts, a progress bar for people.</summary>
public static class Out
{
    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static void WriteJson(object value) => Console.WriteLine(JsonSerializer.Serialize(value, Json));

    /// <summary>Draws "[#####.....] 50% text ETA" on stderr, in place.</summary>
    public static void Progress(double fraction, string text, TimeSpan elapsed)
    {
        if (Console.IsErrorRedirected && fraction < 1) return;
        const int width = 30;
        var filled = (int)Math.Round(Math.Clamp(fraction, 0, 1) * width);
        var eta = fraction > 0.001 ? TimeSpan.FromSeconds(elapsed.TotalSeconds * (1 - fraction) / fraction) : TimeSpan.Zero;
        Console.Error.Write($"\r[{new string('#', filled)}{new string('.', width - filled)}] {100 * fraction,5:F1}% {text} ETA {eta:hh\\:mm\\:ss}   ");
        if (fraction >= 1) Console.Error.WriteLine();
    }

    /// <summary>A token with its visible spaces and newlines, for tables.</summary>
    public static string Show(string token) => "'" + token.Replace("\n", "\\n") + "'";
}
