using Rome.Model.Modeling;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Rome.Model.Editing;

/// <summary>
/// The one place C (<see cref="CovarianceStatistics"/>) is kept: in memory for as long as the cache lives, and on disk
/// under <paramref name="folder"/>, keyed by the model's fingerprint, the layer, the corpus's content and the token
/// count. The web app holds one for all its tabs and models; each CLI command holds its own. Thread-safe: two edits
/// that need the same C compute it once. The tensors it returns belong to it.
/// </summary>
public sealed class CovarianceCache(string folder, string? dataFolder = null) : IDisposable
{
    private readonly Dictionary<string, Tensor> _memory = new();
    private readonly Dictionary<string, (List<string> Texts, string Id)> _corpora = new();
    private readonly Lock _lock = new();

    /// <summary>Where C for these keys lives on disk.</summary>
    public string PathFor(LanguageModel lm, int layer, string corpusId, int tokens) =>
        Path.Combine(folder, lm.Fingerprint, $"C-layer{layer}-{corpusId}-{tokens}.safetensors");

    /// <summary>
    /// C for <paramref name="hp"/>'s layer, or null when it asks for C = I: over <paramref name="corpusPath"/> (a text
    /// file or folder), else the model's own training sentences (<see cref="CovarianceStatistics.DefaultCorpus"/>).
    /// </summary>
    public Tensor? ForEditor(LanguageModel lm, RomeHyperParameters hp, string? corpusPath = null,
                             IProgress<double>? progress = null, CancellationToken cancel = default) =>
        hp.Covariance == "identity" ? null : Get(lm, hp.Layer, hp.CovarianceTokens, corpusPath, progress, cancel);

    /// <summary>C at <paramref name="layer"/> over <paramref name="tokens"/> tokens of the corpus: from memory, from disk, or computed (and saved).</summary>
    public Tensor Get(LanguageModel lm, int layer, int tokens, string? corpusPath = null,
                      IProgress<double>? progress = null, CancellationToken cancel = default)
    {
        EditableLayer.Require(lm, layer, "ROME");
        lock (_lock)
        {
            var corpus = Corpus(lm, corpusPath);
            var path = PathFor(lm, layer, corpus.Id, tokens);
            if (_memory.TryGetValue(path, out var kept)) return kept;
            Tensor c;
            if (File.Exists(path))
            {
                using var scope = NewDisposeScope();
                c = Safetensors.LoadStateDict(path)["C"].to(float64).to(lm.Device).MoveToOuterDisposeScope();
            }
            else
            {
                c = CovarianceStatistics.Compute(lm, layer, corpus.Texts, tokens, progress, cancel);
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                using var onCpu = c.cpu();
                AtomicFile.Write(path, temp => Safetensors.SaveStateDict(temp, new Dictionary<string, Tensor> { ["C"] = onCpu }));
            }
            return _memory[path] = c.DetachFromDisposeScope();
        }
    }

    /// <summary>
    /// AlphaEdit's null-space projection P of C at <paramref name="layer"/> (<see cref="NullSpaceProjection"/>), computed
    /// once per C and threshold and kept in memory with it.
    /// </summary>
    public Tensor Projection(LanguageModel lm, int layer, int tokens, double threshold, string? corpusPath = null,
                             IProgress<double>? progress = null, CancellationToken cancel = default)
    {
        var c = Get(lm, layer, tokens, corpusPath, progress, cancel);
        lock (_lock)
        {
            var key = $"{PathFor(lm, layer, Corpus(lm, corpusPath).Id, tokens)}|P|{threshold:R}";
            if (_memory.TryGetValue(key, out var kept)) return kept;
            var (p, _) = NullSpaceProjection.Of(c, threshold);
            return _memory[key] = p.DetachFromDisposeScope();
        }
    }

    /// <summary>A corpus's texts and content id, read once per model and source.</summary>
    private (List<string> Texts, string Id) Corpus(LanguageModel lm, string? corpusPath)
    {
        var key = $"{lm.Fingerprint}|{corpusPath}";
        if (_corpora.TryGetValue(key, out var corpus)) return corpus;
        var texts = (corpusPath is null ? CovarianceStatistics.DefaultCorpus(lm, dataFolder) : CovarianceStatistics.ReadCorpus(corpusPath)).ToList();
        return _corpora[key] = (texts, CovarianceStatistics.CorpusId(texts));
    }

    /// <summary>Frees every C held in memory (the files stay).</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var c in _memory.Values) c.Dispose();
            _memory.Clear();
        }
    }
}
