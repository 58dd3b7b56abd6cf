using System.Globalization;
using System.Text.Json;
using Rome.Model.Modeling;
using Rome.Model.Facts;
using static TorchSharp.torch;

namespace Rome.Model.Tracing;

/// <summary>
/// The paper's noise scale: ν = 3σ, where σ is the standard deviation of the token embeddings of subjects
/// (all elements of <c>wte</c> rows of the subjects' tokens, as the original <c>collect_embedding_std</c>).
/// Computed once per model and cached on disk by the model's fingerprint.
/// </summary>
public static class NoiseLevel
{
    public const double Multiplier = 3.0;

    /// <summary>
    /// ν from text: "3s" is 3 x σ of subject embeddings (<paramref name="sigma"/>, computed only then); a plain
    /// positive number is ν itself.
    /// </summary>
    public static double Parse(string text, Func<double> sigma)
    {
        text = text.Trim();
        if (text.EndsWith('s') && double.TryParse(text[..^1], NumberStyles.Float, CultureInfo.InvariantCulture, out var times) && times > 0 && times <= MaxMultiple)
            return times * sigma();
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var nu) && nu > 0 && nu <= MaxAbsolute) return nu;
        var shown = text.Length > 20 ? text[..20] + "..." : text;
        throw new RomeException($"The noise must be like 3s (3 x the subject embedding std, at most {MaxMultiple}s) or a number from 0 to {MaxAbsolute}, not '{shown}'.");
    }

    /// <summary>
    /// How <paramref name="text"/> sets ν, for the trace's report: "3 x σ of the embeddings of the subjects of the
    /// model's facts.json" (or of known_1000.json, for a model without a manifest, as <see cref="SubjectStd"/> picks), or
    /// "fixed". The original takes σ over its known-facts dataset.
    /// </summary>
    public static string Describe(string text, LanguageModel lm)
    {
        text = text.Trim();
        if (!text.EndsWith('s')) return "fixed";
        return $"{text[..^1]} x σ of the embeddings of {(HasManifest(lm) ? "the subjects the model was trained on" : "the subjects of the paper's known_1000.json")}";
    }

    /// <summary>Whether σ comes from the model's own fact manifest (else from known_1000.json).</summary>
    private static bool HasManifest(LanguageModel lm) => File.Exists(Path.Combine(lm.Folder, FactCorpus.ManifestFile));

    /// <summary>Bounds on ν: far beyond any useful corruption, and small enough that probabilities stay finite.</summary>
    public const double MaxMultiple = 100, MaxAbsolute = 100;

    /// <summary>σ of the subject-token embeddings of <paramref name="subjects"/>.</summary>
    public static double EmbeddingStd(LanguageModel lm, IEnumerable<string> subjects)
    {
        var ids = subjects.SelectMany(s => lm.Tokenizer.Encode(s)).Select(i => (long)i).ToArray();
        if (ids.Length == 0) throw new RomeException("No subjects to measure the noise level on.");
        using var scope = NewDisposeScope();
        using var index = tensor(ids, device: lm.Device);
        return lm.Model.TokenEmbedding.index_select(0, index).to(float32).std().item<float>();
    }

    /// <summary>
    /// σ for <paramref name="lm"/>, from the cache or computed over the subjects of its fact manifest (or of
    /// known_1000.json in <paramref name="dataFolder"/> for other models).
    /// </summary>
    /// <summary>
    /// The subjects a model's traces draw on: those of its facts.json, else those of the paper's known_1000.json in
    /// <paramref name="dataFolder"/>; null when there are neither.
    /// </summary>
    public static List<string>? Subjects(LanguageModel lm, string? dataFolder)
    {
        if (HasManifest(lm)) return FactCorpus.ForModel(lm.Folder)!.Facts.Select(f => f.Subject).Distinct().ToList();
        var known = dataFolder is null ? null : Path.Combine(dataFolder, "rome", "known_1000.json");
        return known is not null && File.Exists(known)
            ? JsonDocument.Parse(File.ReadAllText(known)).RootElement.EnumerateArray().Select(e => e.GetProperty("subject").GetString()!).ToList()
            : null;
    }

    public static double SubjectStd(LanguageModel lm, string cacheFolder, string? dataFolder)
    {
        var path = Path.Combine(cacheFolder, lm.Fingerprint, "noise.json");
        if (File.Exists(path))
            return JsonDocument.Parse(File.ReadAllText(path)).RootElement.GetProperty("subjectEmbeddingStd").GetDouble();

        var subjects = Subjects(lm, dataFolder)
            ?? throw new RomeException("No subjects to compute the noise level from (no facts.json beside the model and no known_1000.json): give a fixed noise instead.");

        var std = EmbeddingStd(lm, subjects);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        AtomicFile.Write(path, temp => File.WriteAllText(temp,
            string.Create(CultureInfo.InvariantCulture, $"{{\"subjectEmbeddingStd\": {std:R}, \"subjects\": {subjects.Count}}}")));
        return std;
    }
}
