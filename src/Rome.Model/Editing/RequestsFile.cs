using System.Text;
using System.Text.Json;

namespace Rome.Model.Editing;

/// <summary>
/// Facts to write in bulk, from a file: a JSON list of CounterFact cases (their <c>requested_rewrite</c>), of
/// <c>requested_rewrite</c> objects (<c>{prompt, subject, target_new: {str}}</c>) or of <c>{prompt, subject, target}</c>;
/// or a CSV with the columns prompt, subject and target (a header line names them; fields may be quoted). Every row is
/// checked before any is returned, and a bad one is refused with its number.
/// </summary>
public static class RequestsFile
{
    /// <summary>The most facts one file may hold.</summary>
    public const int MaxRows = 1000;
    /// <summary>The longest new target, in characters: a target is an object's name, not a sentence.</summary>
    public const int MaxTargetLength = 50;

    public static List<EditRequest> Read(string path, string? label = null)
    {
        label ??= Path.GetFileName(path);
        if (!File.Exists(path)) throw new RomeException($"Requests file {label} not found.");
        return Parse(File.ReadAllText(path), label, Path.GetExtension(path).Equals(".csv", StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>Reads <paramref name="text"/> as CSV when <paramref name="csv"/>, else as JSON (also when it starts with '[').</summary>
    public static List<EditRequest> Parse(string text, string label, bool csv)
    {
        var rows = csv && !text.TrimStart().StartsWith('[') ? CsvRows(text, label) : JsonRows(text, label);
        if (rows.Count == 0) throw new RomeException($"{label} holds no facts.");
        if (rows.Count > MaxRows) throw new RomeException($"{label} holds {rows.Count:N0} facts; a file may hold at most {MaxRows:N0} (row {MaxRows + 1:N0} is the first too many).");
        var requests = new List<EditRequest>();
        for (int i = 0; i < rows.Count; i++)
        {
            var (prompt, subject, target) = rows[i];
            try
            {
                if (string.IsNullOrWhiteSpace(prompt)) throw new RomeException("the prompt is empty.");
                if ((target ?? "").Trim().Length > MaxTargetLength)
                    throw new RomeException($"the new target is {target!.Trim().Length} characters long; a target is a name of at most {MaxTargetLength}.");
                requests.Add(EditRequest.FromUser(prompt, subject ?? "", target ?? ""));
            }
            catch (RomeException e)
            {
                throw e.Within($"{label}, row {i + 1}");
            }
        }
        return requests;
    }

    private static List<(string? Prompt, string? Subject, string? Target)> JsonRows(string text, string label)
    {
        JsonDocument document;
        try { document = JsonDocument.Parse(text); }
        catch (JsonException e) { throw new RomeException($"{label} is neither a JSON list nor a CSV file: {e.Message}"); }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Array)
                throw new RomeException($"{label} must hold a JSON list of facts, [{{\"prompt\": \"{{}} is located in\", \"subject\": \"...\", \"target\": \"...\"}}, ...].");
            var rows = new List<(string?, string?, string?)>();
            var n = 0;
            foreach (var item in document.RootElement.EnumerateArray())
            {
                n++;
                if (rows.Count > MaxRows) { rows.Add(default); continue; }   // counted, not read
                var fact = item.ValueKind == JsonValueKind.Object && item.TryGetProperty("requested_rewrite", out var rewrite) ? rewrite : item;
                if (fact.ValueKind != JsonValueKind.Object)
                    throw new RomeException($"{label}, row {n}: a fact is an object with prompt, subject and target, not {fact.ValueKind.ToString().ToLowerInvariant()}.");
                var target = fact.TryGetProperty("target_new", out var t) && t.ValueKind == JsonValueKind.Object ? Text(t, "str", label, n) : Text(fact, "target", label, n) ?? Text(fact, "target_new", label, n);
                rows.Add((Text(fact, "prompt", label, n), Text(fact, "subject", label, n), target));
            }
            return rows;
        }
    }

    private static string? Text(JsonElement e, string name, string label, int row) =>
        !e.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null ? null
        : v.ValueKind == JsonValueKind.String ? v.GetString()
        : throw new RomeException($"{label}, row {row}: \"{name}\" must be text, not {v.ValueKind.ToString().ToLowerInvariant()}.");

    private static List<(string? Prompt, string? Subject, string? Target)> CsvRows(string text, string label)
    {
        var firstLine = text.TrimStart().Split('\n')[0];
        var lines = CsvRecords(text, firstLine.Contains('\t') ? '\t' : ',').Where(r => r.Any(f => f.Length > 0)).ToList();
        if (lines.Count == 0) return [];
        var header = lines[0].Select(h => h.Trim().ToLowerInvariant()).ToList();
        int Column(string name) => header.IndexOf(name) is >= 0 and var i ? i
            : throw new RomeException($"{label}: the first line must name the columns prompt, subject and target; it has {string.Join(", ", header)}.");
        var (p, s, t) = (Column("prompt"), Column("subject"), Column("target"));
        return lines.Skip(1).Select(r => (Field(r, p), Field(r, s), Field(r, t))).ToList();
    }

    private static string? Field(List<string> record, int i) => i < record.Count ? record[i] : null;

    /// <summary>CSV records: <paramref name="separator"/> separates fields, double quotes enclose fields with separators, quotes or line breaks.</summary>
    private static IEnumerable<List<string>> CsvRecords(string text, char separator)
    {
        var record = new List<string>();
        var field = new StringBuilder();
        var quoted = false;
        for (int i = 0; i < text.Length; i++)
        {
            var ch = text[i];
            if (quoted)
            {
                if (ch == '"' && i + 1 < text.Length && text[i + 1] == '"') { field.Append('"'); i++; }
                else if (ch == '"') quoted = false;
                else field.Append(ch);
            }
            else if (ch == '"') quoted = true;
            else if (ch == separator) { record.Add(field.ToString()); field.Clear(); }
            else if (ch == '\n' || ch == '\r')
            {
                if (ch == '\r' && i + 1 < text.Length && text[i + 1] == '\n') i++;
                record.Add(field.ToString()); field.Clear();
                yield return record;
                record = [];
            }
            else field.Append(ch);
        }
        if (field.Length > 0 || record.Count > 0) { record.Add(field.ToString()); yield return record; }
    }
}
