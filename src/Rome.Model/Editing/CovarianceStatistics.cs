using System.Security.Cryptography;
using System.Text;
using Rome.Model.Modeling;
using Rome.Model.Training;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Rome.Model.Editing;

/// <summary>
/// C = E[k kᵀ]: the uncentred second moment of MLP keys (inputs of <c>mlp.c_proj</c>) at one layer over a text
/// corpus, estimated with a running float64 sum over batches. ROME solves against it so an edit disturbs the
/// keys the layer usually sees as little as possible. Cached on disk by model, layer, corpus and token count.
/// </summary>
public static class CovarianceStatistics
{
    /// <summary>
    /// The corpus C is estimated on: the model's own training sentences when it has a manifest (the bundled models);
    /// else, for a model trained elsewhere, ParaRel's templates filled with its facts from <paramref name="dataFolder"/>
    /// (plain factual English, the kind of text the edited facts come from); else a user's text is needed.
    /// </summary>
    public static IEnumerable<string> DefaultCorpus(LanguageModel lm, string? dataFolder = null)
    {
        if (FactCorpus.ForModel(lm.Folder) is { } own) return own.TrainingSentences();
        if (dataFolder is not null && Directory.Exists(Path.Combine(dataFolder, "pararel"))) return FactCorpus.Build(dataFolder).TrainingSentences();
        throw new RomeException($"{lm.Name} has no facts.json and no ParaRel data was found; give a text file or folder to estimate C on (--corpus), or use identity covariance.");
    }

    /// <summary>Texts from a .txt file (one document per blank-line-separated paragraph) or every .txt file of a folder.</summary>
    public static IEnumerable<string> ReadCorpus(string path)
    {
        IEnumerable<string> files = Directory.Exists(path) ? Directory.EnumerateFiles(path, "*.txt", SearchOption.AllDirectories).Order()
            : File.Exists(path) ? [path] : throw new RomeException($"Corpus {path} not found.");
        foreach (var file in files)
            foreach (var paragraph in File.ReadAllText(file).Split("\n\n", StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                yield return paragraph;
    }

    public static string CachePath(LanguageModel lm, int layer, string corpusId, int tokens, string cacheFolder) =>
        Path.Combine(cacheFolder, lm.Fingerprint, $"C-layer{layer}-{corpusId}-{tokens}.safetensors");

    /// <summary>A short id of a corpus's content, part of the cache key.</summary>
    public static string CorpusId(IEnumerable<string> texts)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var t in texts) sha.AppendData(Encoding.UTF8.GetBytes(t + "\n"));
        return Convert.ToHexString(sha.GetHashAndReset())[..12].ToLowerInvariant();
    }

    /// <summary>Loads C from the cache or computes and caches it. [keys, keys] float64 on the model's device.</summary>
    public static Tensor GetOrCompute(LanguageModel lm, int layer, IReadOnlyList<string> corpus, int maxTokens, string cacheFolder,
                                      IProgress<double>? progress = null, CancellationToken cancel = default)
    {
        if (layer < 0 || layer >= lm.Layers) throw new RomeException($"Layer {layer} is out of range (0..{lm.Layers - 1}).");
        var path = CachePath(lm, layer, CorpusId(corpus), maxTokens, cacheFolder);
        if (File.Exists(path))
        {
            var loaded = Safetensors.LoadStateDict(path);
            return loaded["C"].to(float64).to(lm.Device);
        }
        var c = Compute(lm, layer, corpus, maxTokens, progress, cancel);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        Checkpoint.WriteAtomically(path, temp => Safetensors.SaveStateDict(temp, new Dictionary<string, Tensor> { ["C"] = c.cpu() }));
        return c;
    }

    /// <summary>
    /// C for an editor's layer as ROME wants it: null for identity covariance, else C over <paramref name="corpusPath"/>
    /// (a text file or folder) or the model's own training sentences, computed on first use and cached.
    /// </summary>
    public static Func<Tensor>? ForEditor(LanguageModel lm, RomeHyperParameters hp, string cacheFolder, string? corpusPath = null,
                                          IProgress<double>? progress = null, CancellationToken cancel = default, string? dataFolder = null)
    {
        if (hp.Covariance == "identity") return null;
        var corpus = (corpusPath is null ? DefaultCorpus(lm, dataFolder) : ReadCorpus(corpusPath)).ToList();
        Tensor? c = null;
        // The first call may happen inside an edit's dispose scope: C must outlive it, so it is detached and owned
        // by this function (it is reused by every later edit).
        return () => c ??= GetOrCompute(lm, hp.Layer, corpus, hp.CovarianceTokens, cacheFolder, progress, cancel).DetachFromDisposeScope();
    }

    public static Tensor Compute(LanguageModel lm, int layer, IReadOnlyList<string> corpus, int maxTokens,
                                 IProgress<double>? progress = null, CancellationToken cancel = default)
    {
        var width = lm.Config.Inner;
        var sum = zeros([width, width], dtype: float64, device: lm.Device);
        long count = 0;
        var max = lm.Config.Positions;
        var sequences = corpus.Select(t => lm.Tokenizer.Encode(t)).Where(ids => ids.Length > 0).Select(ids => ids.Length > max ? ids[..max] : ids);
        foreach (var batch in sequences.Chunk(32))
        {
            cancel.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var ids = lm.Padded(batch);
            using var lengths = tensor(batch.Select(b => (long)b.Length).ToArray(), device: lm.Device);
            var valid = arange(ids.shape[1], device: lm.Device).unsqueeze(0) < lengths.unsqueeze(1);
            // Only the blocks up to the layer run.
            var keys = lm.Model.RunWithCache(ids, [HookPoint.MlpKey(layer)])[HookPoint.MlpKey(layer)];
            var rows = keys.reshape(-1, width)[valid.flatten()].to(float64);
            sum.add_(rows.t().matmul(rows));
            count += rows.shape[0];
            progress?.Report(Math.Min(1, count / (double)maxTokens));
            if (count >= maxTokens) break;
        }
        if (count == 0) throw new RomeException("The corpus for C has no text.");
        return sum.div_(count);
    }
}
