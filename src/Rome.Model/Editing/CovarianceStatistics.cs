using System.Security.Cryptography;
using System.Text;
using Rome.Model.Modeling;
using Rome.Model.Facts;
using TorchSharp;
using static TorchSharp.torch;

namespace Rome.Model.Editing;

/// <summary>
/// C = E[k kᵀ]: the uncentred second moment of MLP keys (inputs of <c>mlp.c_proj</c>) at one layer over a text
/// corpus, estimated with a running float64 sum over batches. ROME solves against it so an edit disturbs the
/// keys the layer usually sees as little as possible (the original's <c>layer_stats.py</c>). <see cref="CovarianceCache"/>
/// keeps it, in memory and on disk.
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

    /// <summary>A short id of a corpus's content, part of the cache key.</summary>
    public static string CorpusId(IEnumerable<string> texts)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var t in texts) sha.AppendData(Encoding.UTF8.GetBytes(t + "\n"));
        return Convert.ToHexString(sha.GetHashAndReset())[..12].ToLowerInvariant();
    }

    /// <summary>
    /// C at <paramref name="layer"/> over the first <paramref name="maxTokens"/> tokens of <paramref name="corpus"/>:
    /// [keys, keys] float64 on the model's device (the original's <c>layer_stats</c> with <c>mom2</c>).
    /// </summary>
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
