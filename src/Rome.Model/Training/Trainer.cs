using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Rome.Model.Facts;
using Rome.Model.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Rome.Model.Training;

public sealed record TrainingProgress(int Step, int TotalSteps, double Loss, double LearningRate, TimeSpan Elapsed);

/// <summary>
/// Trains a GPT-2-architecture model from scratch on the corpus's facts, written out as documents by the
/// recipe's <see cref="TrainingText"/> and packed into sequences, so facts are seen at many offsets.
/// Seeded and resumable: the data of step s depends only on (seed, s), and checkpoints hold weights,
/// optimiser state and the step.
/// </summary>
public sealed class Trainer(FactCorpus corpus, TrainingRecipe options)
{
    public const string StateFile = "training-state.json";
    public const string OptimizerFile = "optimizer.bin";
    public const string LossLog = "loss.csv";

    private readonly TextTokenizer _tokenizer = TextTokenizer.Gpt2();
    private readonly TrainingText _text = new(corpus, options.Text) { BiographyShare = options.BiographyShare, ListShare = options.ListShare };

    /// <summary>Trains into <paramref name="folder"/>, resuming from the checkpoint there if any. Returns the model.</summary>
    public DecoderModel Train(string folder, IProgress<TrainingProgress>? progress = null, CancellationToken cancel = default)
    {
        options.Validate();
        Directory.CreateDirectory(folder);
        manual_seed(options.Seed);
        var config = ModelConfig.Gpt2(options.Layers, options.Width, options.Heads, options.Positions) with { AttentionWindows = options.AttentionWindows };
        DecoderModel model;
        int start = 0;
        var elapsed = TimeSpan.Zero;
        var statePath = Path.Combine(folder, StateFile);
        if (File.Exists(statePath) && File.Exists(Path.Combine(folder, Checkpoint.WeightsFile)))
        {
            model = Checkpoint.Load(folder);
            using var doc = JsonDocument.Parse(File.ReadAllText(statePath));
            start = doc.RootElement.GetProperty("step").GetInt32();
            elapsed = TimeSpan.FromSeconds(doc.RootElement.GetProperty("seconds").GetDouble());
            if (model.Config.Embd != config.Embd || model.Config.Layers != config.Layers)
                throw new RomeException($"{folder} holds a checkpoint of another shape; remove it or train elsewhere.");
        }
        else
        {
            model = new DecoderModel(config);
            InitializeWeights(model, options.Seed);
            File.WriteAllText(Path.Combine(folder, LossLog), "step,loss,lr,seconds\n");
        }
        model.train();
        var frozen = new HashSet<Tensor>(MlpFreeParameters(model), ReferenceEqualityComparer.Instance);
        using (no_grad())
            foreach (var p in frozen) p.zero_();
        var trained = model.parameters().Where(p => !frozen.Contains(p)).ToList();
        foreach (var p in model.parameters()) p.requires_grad = !frozen.Contains(p);

        // Weight decay on matrices and embeddings, not on biases and layer-norm gains (as nanoGPT does).
        var optimizer = optim.AdamW(
            [
                new TorchSharp.Modules.AdamW.ParamGroup { Parameters = trained.Where(p => p.dim() >= 2).ToList(), Options = new() { weight_decay = options.WeightDecay } },
                new TorchSharp.Modules.AdamW.ParamGroup { Parameters = trained.Where(p => p.dim() < 2).ToList(), Options = new() { weight_decay = 0.0 } },
            ],
            lr: options.LearningRate, beta1: 0.9, beta2: 0.98);
        var optimizerPath = Path.Combine(folder, OptimizerFile);
        if (start > 0 && File.Exists(optimizerPath)) optimizer.load_state_dict(optimizerPath);

        // Every token a training sentence can produce, with or without a leading space.
        var corpusTokens = _text.Vocabulary()
            .SelectMany(s => _tokenizer.Encode(" " + s).Concat(_tokenizer.Encode(s)))
            .Append(TextTokenizer.EndOfText).Distinct().Order().ToArray();
        var fullFrom = (int)(options.Steps * (1 - options.FullSoftmaxFraction));

        var clock = Stopwatch.StartNew();
        for (int step = start; step < options.Steps; step++)
        {
            if (cancel.IsCancellationRequested) break;
            using var scope = NewDisposeScope();
            var lr = LearningRate(step);
            foreach (var g in optimizer.ParamGroups) g.LearningRate = lr;

            var (inputs, targets) = Batch(step);
            var hidden = model.FinalNorm(model.Forward(inputs, stopAtLayer: model.Config.Layers));
            Tensor loss;
            if (step >= fullFrom)
                loss = nn.functional.cross_entropy(model.Head(hidden).flatten(0, 1), targets.flatten(), ignore_index: -1);
            else
                loss = RestrictedLoss(model, hidden, targets, corpusTokens, step);
            optimizer.zero_grad();
            loss.backward();
            nn.utils.clip_grad_norm_(trained, 1.0);
            optimizer.step();

            var now = elapsed + clock.Elapsed;
            var value = loss.item<float>();
            if (step % 20 == 0 || step == options.Steps - 1)
                File.AppendAllText(Path.Combine(folder, LossLog), string.Create(CultureInfo.InvariantCulture, $"{step},{value:F4},{lr:G4},{now.TotalSeconds:F1}\n"));
            progress?.Report(new TrainingProgress(step + 1, options.Steps, value, lr, now));
            if ((step + 1) % options.CheckpointEvery == 0 || step == options.Steps - 1)
                Save(model, optimizer, folder, step + 1, now);
        }
        if (cancel.IsCancellationRequested)
        {
            // Ctrl-C: the last checkpoint stays as it was (saves are atomic); nothing newer is written.
            throw new OperationCanceledException(cancel);
        }
        model.eval();
        foreach (var p in model.parameters()) p.requires_grad = false;
        return model;
    }

    /// <summary>GPT-2's initialisation: N(0, 0.02), residual projections scaled by 1/√(2·layers), biases 0, norm gains 1.</summary>
    public static void InitializeWeights(DecoderModel model, int seed)
    {
        using var noGrad = no_grad();
        using var generator = new TorchSharp.torch.Generator((ulong)seed);
        foreach (var (name, p) in model.named_parameters())
        {
            if (name.EndsWith(".bias")) p.zero_();
            else if (name.Contains("ln_")) p.fill_(1.0);
            else
            {
                var std = name.EndsWith("c_proj.weight") ? 0.02 / Math.Sqrt(2.0 * model.Config.Layers) : 0.02;
                p.normal_(0, std, generator);
            }
        }
    }

    private IEnumerable<Tensor> MlpFreeParameters(DecoderModel model)
    {
        for (int layer = 0; layer < options.MlpFreeLayers; layer++)
            foreach (var name in new[] { "c_fc", "c_proj" })
            {
                var linear = model.Linear($"h.{layer}.mlp.{name}");
                yield return linear.Weight;
                if (linear.Bias is { } bias) yield return bias;
            }
    }

    private double LearningRate(int step)
    {
        if (step < options.WarmupSteps) return options.LearningRate * (step + 1) / options.WarmupSteps;
        var progress = (step - options.WarmupSteps) / (double)Math.Max(1, options.Steps - options.WarmupSteps);
        return options.LearningRate * (0.1 + 0.9 * 0.5 * (1 + Math.Cos(Math.PI * progress)));
    }

    /// <summary>Cross-entropy over the corpus's tokens plus sampled other tokens (targets remapped into that set).</summary>
    private Tensor RestrictedLoss(DecoderModel model, Tensor hidden, Tensor targets, int[] corpusTokens, int step)
    {
        var random = new Random(StepSeed(step, 7));
        var inCorpus = new HashSet<int>(corpusTokens);
        var negatives = new HashSet<int>();
        while (negatives.Count < options.SampledNegatives)
        {
            var id = random.Next(model.Config.VocabSize);
            if (!inCorpus.Contains(id)) negatives.Add(id);
        }
        var candidates = corpusTokens.Concat(negatives).ToArray();
        var position = new long[model.Config.VocabSize];
        Array.Fill(position, -1);
        for (int i = 0; i < candidates.Length; i++) position[candidates[i]] = i;
        var map = tensor(position);
        var mapped = where(targets >= 0, map.index_select(0, targets.clamp_min(0).flatten()).view_as(targets), targets);
        var weights = model.TokenEmbedding.index_select(0, tensor(candidates.Select(c => (long)c).ToArray()));
        return nn.functional.cross_entropy(hidden.matmul(weights.t()).flatten(0, 1), mapped.flatten(), ignore_index: -1);
    }

    /// <summary>
    /// A seed from (seed, step, stream) that is the same in every process (HashCode.Combine is not: .NET seeds it
    /// per process, which made runs irreproducible).
    /// </summary>
    private int StepSeed(int step, int stream) => unchecked(options.Seed * 1_000_003 + step * 7_919 + stream);

    /// <summary>The batch of step <paramref name="step"/>: depends only on the seed and the step.</summary>
    public (Tensor Inputs, Tensor Targets) Batch(int step)
    {
        var random = new Random(StepSeed(step, 0));
        var length = options.Positions;
        var inputs = new long[options.BatchSize, length];
        var targets = new long[options.BatchSize, length];
        for (int b = 0; b < options.BatchSize; b++)
        {
            // Documents packed end to end with <|endoftext|> between them, as GPT-2 was trained (so the model
            // knows how text starts after it: ROME samples its context prefixes from there); the last document is
            // cut where the sequence ends.
            var ids = new List<int>();
            while (ids.Count < length + 1)
            {
                if (ids.Count > 0) ids.Add(TextTokenizer.EndOfText);
                ids.AddRange(_tokenizer.Encode(_text.Document(random, first: ids.Count == 0)));
            }
            for (int t = 0; t < length; t++)
            {
                inputs[b, t] = t < ids.Count ? ids[t] : TextTokenizer.EndOfText;
                targets[b, t] = t + 1 < ids.Count ? ids[t + 1] : -1;
            }
        }
        return (tensor(inputs), tensor(targets));
    }

    private static void Save(DecoderModel model, TorchSharp.Modules.OptimizerHelper optimizer, string folder, int step, TimeSpan elapsed)
    {
        Checkpoint.Save(model, folder);
        AtomicFile.Write(Path.Combine(folder, OptimizerFile), optimizer.save_state_dict);
        AtomicFile.Write(Path.Combine(folder, StateFile), path =>
            File.WriteAllText(path, JsonSerializer.Serialize(new { step, seconds = elapsed.TotalSeconds })));
    }
}
