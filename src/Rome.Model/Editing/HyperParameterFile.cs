using System.Text.Json;

namespace Rome.Model.Editing;

/// <summary>The one reader of an editor's settings file (<c>rome-hparams.json</c>, <c>memit-hparams.json</c>): camelCase names, and a misspelt or renamed setting is an error, not a silent default.</summary>
internal static class HyperParameterFile
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow,
    };

    public static T Load<T>(string path) where T : new()
    {
        if (!File.Exists(path)) throw new RomeException($"Hyper-parameter file {path} not found.");
        try { return JsonSerializer.Deserialize<T>(File.ReadAllText(path), Json) ?? new(); }
        catch (JsonException e) { throw new RomeException($"{path} is not valid: {e.Message}"); }
    }
}
