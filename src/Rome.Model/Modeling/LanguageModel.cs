using TorchSharp;
using static TorchSharp.torch;

namespace Rome.Model.Modeling;

/// <summary>A loaded model with its tokenizer: what every service (tracing, editing, evaluation) runs on.</summary>
public sealed class LanguageModel : IDisposable
{
    public DecoderModel Model { get; }
    public TextTokenizer Tokenizer { get; }
    public Device Device { get; }
    /// <summary>Folder name, e.g. <c>rome-tiny</c>.</summary>
    public string Name { get; }
    public string Folder { get; }
    /// <summary>Content hash of the weights file: edits exported from one model only import onto the same one.</summary>
    public string Fingerprint { get; }

    public ModelConfig Config => Model.Config;
    public int Layers => Config.Layers;

    /// <summary>The token text starts after: beginning-of-text where the config has one, else end-of-text (GPT-2's).</summary>
    public int StartOfText => Config.BosTokenId ?? Config.EosTokenId;

    public LanguageModel(DecoderModel model, TextTokenizer tokenizer, string folder, string fingerprint, Device? device = null)
    {
        Model = model;
        Tokenizer = tokenizer;
        Folder = folder;
        Name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder)));
        Fingerprint = fingerprint;
        Device = device ?? CPU;
    }

    /// <summary>
    /// Loads a Hugging Face model folder (see <see cref="Checkpoint"/>). <paramref name="device"/> is "cpu" or "cuda" (where TorchSharp's CUDA build
    /// is installed); <paramref name="dtype"/> is "float32" (default), "float16" or "bfloat16".
    /// </summary>
    public static LanguageModel Load(string folder, string device = "cpu", string dtype = "float32")
    {
        Device dev;
        try { dev = torch.device(device); }
        catch (Exception e) { throw new RomeException($"Unknown device '{device}': {e.Message}"); }
        if (dev.type == DeviceType.CUDA && !cuda.is_available())
            throw new RomeException("Device 'cuda' was asked for, but CUDA is not available (the CPU build of TorchSharp is installed).");
        var type = dtype.ToLowerInvariant() switch
        {
            "float32" or "fp32" => ScalarType.Float32,
            "float16" or "fp16" => ScalarType.Float16,
            "bfloat16" or "bf16" => ScalarType.BFloat16,
            _ => throw new RomeException($"Unknown dtype '{dtype}' (float32, float16 or bfloat16)."),
        };
        // The tokenizer first: a folder without one fails before gigabytes of weights are read.
        if (!Directory.Exists(folder)) throw new RomeException($"Model folder '{folder}' does not exist.");
        var configPath = Path.Combine(folder, Checkpoint.ConfigFile);
        if (!File.Exists(configPath)) throw new RomeException($"Model folder '{folder}' has no {Checkpoint.ConfigFile}.");
        var tokenizer = TextTokenizer.ForModel(folder, ModelConfig.Load(configPath));
        var model = Checkpoint.Load(folder, dev, type);
        return new LanguageModel(model, tokenizer, folder, Checkpoint.Fingerprint(folder), dev);
    }

    public long ParameterCount => Model.parameters().Sum(p => p.numel());

    public int[] Encode(string text)
    {
        var ids = Tokenizer.EncodePrompt(text);
        if (ids.Length == (Tokenizer.BeginningOfText is null ? 0 : 1)) throw new RomeException("The prompt is empty.");
        return ids;
    }

    /// <summary>[1, tokens] int64 on the model's device.</summary>
    public Tensor Ids(IReadOnlyList<int> ids) => tensor(ids.Select(i => (long)i).ToArray(), dtype: int64, device: Device).unsqueeze(0);

    /// <summary>
    /// Sequences as one [batch, longest] int64 tensor, right-padded with the end-of-text token. Under causal attention the
    /// padding cannot change any real position, so callers just read each sequence's own positions.
    /// </summary>
    public Tensor Padded(IReadOnlyList<int[]> sequences)
    {
        var width = sequences.Max(s => s.Length);
        var ids = new long[sequences.Count, width];
        for (int b = 0; b < sequences.Count; b++)
            for (int t = 0; t < width; t++)
                ids[b, t] = t < sequences[b].Length ? sequences[b][t] : Config.EosTokenId;
        return tensor(ids, device: Device);
    }

    /// <summary>Log-probabilities of the next token after <paramref name="ids"/> ([vocab]).</summary>
    public Tensor NextTokenLogProbs(IReadOnlyList<int> ids, Interventions? iv = null)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var logits = Model.Forward(Ids(ids), iv, lastOnly: true);
        return logits[0, -1].log_softmax(-1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Log-probabilities of the next token after each prompt ([prompts, vocab]), in batches. Prompts are
    /// right-padded: under causal attention padding after a prompt cannot change its last position.
    /// </summary>
    public Tensor NextTokenLogProbs(IReadOnlyList<int[]> prompts, Interventions? iv = null, int batchSize = 64)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var parts = new List<Tensor>();
        for (int start = 0; start < prompts.Count; start += batchSize)
        {
            var batch = prompts.Skip(start).Take(batchSize).ToList();
            // Only each prompt's last position goes through the unembedding (the vocabulary-wide matrix dominates).
            var resid = Model.Forward(Padded(batch), iv, stopAtLayer: Config.Layers);
            var last = tensor(batch.Select(p => (long)p.Length - 1).ToArray(), device: Device);
            var rows = arange(batch.Count, device: Device);
            parts.Add(Model.Unembed(resid[rows, last]).log_softmax(-1));
        }
        return cat(parts, 0).MoveToOuterDisposeScope();
    }

    /// <summary>The top-<paramref name="top"/> next tokens, plus per-position argmax and log-sum-exp of the logits.</summary>
    public Prediction Predict(IReadOnlyList<int> ids, int top = 5, Interventions? iv = null)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var logits = Model.Forward(Ids(ids), iv)[0];
        var probs = logits[-1].softmax(-1);
        var (values, indices) = probs.topk(Math.Min(top, Config.VocabSize));
        var tops = values.data<float>().ToArray().Zip(indices.data<long>().ToArray(),
            (p, i) => new TokenProbability((int)i, Tokenizer.TokenLabel((int)i), p)).ToArray();
        return new Prediction(
            ids.ToArray(),
            tops,
            logits.argmax(-1).data<long>().Select(i => (int)i).ToArray(),
            logits.logsumexp(-1).data<float>().ToArray());
    }

    public void Dispose() => Model.Dispose();
}

public sealed record TokenProbability(int Id, string Text, double Probability);

/// <summary>What <c>rome predict</c> reports.</summary>
public sealed record Prediction(int[] InputIds, TokenProbability[] Top, int[] ArgmaxPerPosition, float[] LogSumExpPerPosition);
