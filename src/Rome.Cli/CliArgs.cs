using System.Globalization;
using Rome.Model;

namespace Rome.Cli;

/// <summary>
/// The options of one command: <c>--name value</c>, repeatable options and <c>--flag</c>s. Unknown options and
/// malformed numbers are user errors with a clear message, never a stack trace.
/// </summary>
public sealed class CliArgs
{
    private readonly Dictionary<string, List<string>> _values = new();
    private readonly HashSet<string> _used = new();

    public CliArgs(IEnumerable<string> args, IEnumerable<string> flags)
    {
        var flagSet = flags.ToHashSet();
        var list = args.ToList();
        if (list.Count > 0 && !list[0].StartsWith("--")) { Verb = list[0]; list.RemoveAt(0); }
        for (int i = 0; i < list.Count; i++)
        {
            var arg = list[i];
            if (!arg.StartsWith("--")) throw new RomeException($"Unexpected argument '{arg}'. Options look like --name value.");
            var name = arg[2..];
            string value;
            var eq = name.IndexOf('=');
            if (eq >= 0) (name, value) = (name[..eq], name[(eq + 1)..]);
            else if (flagSet.Contains(name)) value = "true";
            else if (i + 1 < list.Count) value = list[++i];
            else throw new RomeException($"Option --{name} needs a value.");
            if (!_values.TryGetValue(name, out var values)) _values[name] = values = [];
            values.Add(value);
        }
    }

    /// <summary>A leading word before the options, as in <c>rome bench forward</c>.</summary>
    public string? Verb { get; }

    public bool Has(string name) { _used.Add(name); return _values.ContainsKey(name); }
    public bool Flag(string name) => Has(name) && _values[name][^1] != "false";
    public string? Get(string name) => Has(name) ? _values[name][^1] : null;
    public string Get(string name, string fallback) => Get(name) ?? fallback;
    public string Require(string name) => Get(name) ?? throw new RomeException($"Option --{name} is required.");
    public IReadOnlyList<string> All(string name) => Has(name) ? _values[name] : [];

    public int Int(string name, int fallback) => Get(name) is { } v
        ? int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var x) ? x : throw new RomeException($"--{name} must be a whole number, not '{v}'.")
        : fallback;

    public double Double(string name, double fallback) => Get(name) is { } v
        ? double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var x) ? x : throw new RomeException($"--{name} must be a number, not '{v}'.")
        : fallback;

    /// <summary>A copy with <c>--name value</c> set (the last value wins).</summary>
    public CliArgs With(string name, string value)
    {
        var copy = new CliArgs([], []);
        foreach (var (k, v) in _values) copy._values[k] = [.. v];
        foreach (var k in _used) copy._used.Add(k);
        if (!copy._values.TryGetValue(name, out var list)) copy._values[name] = list = [];
        list.Add(value);
        return copy;
    }

    /// <summary>A comma-separated list of whole numbers, e.g. --layers 3,4,5.</summary>
    public static int[] IntList(string text, string name) =>
        text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(v => int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var x) ? x : throw new RomeException($"--{name} takes whole numbers separated by commas, e.g. 3,4,5; '{v}' is not one."))
            .ToArray() is { Length: > 0 } list ? list : throw new RomeException($"--{name} needs at least one number.");

    /// <summary>Call after reading every option: anything left over is a typo the user should hear about.</summary>
    public void EnsureAllUsed()
    {
        var unknown = _values.Keys.Where(k => !_used.Contains(k)).ToList();
        if (unknown.Count > 0) throw new RomeException($"Unknown option --{unknown[0]}. See 'rome help'.");
    }
}
