using Rome.Model.Modeling;
using static TorchSharp.torch;
using Rome.Model.Tracing;

namespace Rome.Tests;

/// <summary>
/// Causal tracing the straightforward way, as the paper describes it and as the original <c>trace_with_patch</c> runs
/// it: one full forward pass per cell, the subject's embeddings noised, one clean state (or window of states) put
/// back at one token, and with severing the later MLP or attention outputs at that token frozen at the corrupted
/// run's. The reference the fast <see cref="CausalTrace"/> is checked against (tests) and timed against (bench);
/// written from the model's public hooks only, sharing none of the fast trace's code (but the choice of replacement
/// subjects, <see cref="TokenReplacement.Choose"/>, which is tested on its own). It also takes the options beyond the
/// paper: token replacement, the other metrics, and the noising direction (one state corrupted in the clean run).
/// </summary>
public static class NaiveTrace
{
    /// <param name="fraction">How far each cell moves its states towards the restored run's (1: all the way, the trace; a small step gives finite differences).</param>
    public static TraceResult Run(LanguageModel lm, TraceRequest request, double noise, CancellationToken cancel = default, double fraction = 1)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var options = request.Options;
        var ids = lm.Encode(request.Prompt);
        var span = lm.Tokenizer.FindSpan(request.Prompt, request.Subject);
        var window = request.Window ?? CausalTrace.DefaultWindow(lm.Layers);
        var kinds = request.Kinds.Distinct().ToList();
        int layers = lm.Layers;
        Interventions Edited() => new() { Overlays = request.Edits };

        var points = Enumerable.Range(0, layers).SelectMany(l => new[] { HookPoint.Resid(l), HookPoint.Mlp(l), HookPoint.Attn(l) }).ToList();
        var (cleanLogits, clean) = lm.Model.RunWithLogits(lm.Ids(ids), points, Edited());
        var cleanLast = cleanLogits[0, -1];
        var answer = (int)cleanLast.argmax().item<long>();

        // The corrupted runs: the same noise as the fast trace draws (N(0, ν²) per sample, subject token and dimension,
        // from the seed), or the prompt written again with each replacement subject in the subject's place.
        Tensor input;
        Func<Interventions> Corrupted;
        List<string>? replaced = null;
        if (options.Corruption == TraceCorruption.Str)
        {
            replaced = TokenReplacement.Choose(lm, request.Prompt, request.Subject, answer, request.ReplacementPool, request.Samples, request.Seed, Edited())
                .Select(r => r.Subject).ToList();
            var at = request.Prompt.IndexOf(request.Subject, StringComparison.Ordinal);
            input = cat(replaced.Select(r => lm.Ids(lm.Encode(request.Prompt[..at] + r + request.Prompt[(at + request.Subject.Length)..]))).ToList(), 0);
            Corrupted = Edited;
        }
        else
        {
            using var generator = new TorchSharp.torch.Generator((ulong)request.Seed, lm.Device);
            var noiseTensor = (randn([request.Samples, span.Length, lm.Config.Embd], generator: generator, device: lm.Device) * noise).to(lm.Model.TokenEmbedding.dtype);
            var positions = tensor(span.Positions(), device: lm.Device);
            input = lm.Ids(ids).expand(request.Samples, -1);
            Corrupted = () => Edited().Hook(HookPoint.Embed, x => x.index_add(1, positions, noiseTensor, 1.0));
        }
        var samples = (int)input.shape[0];
        var (corruptLogits, corrupted) = lm.Model.RunWithLogits(input, points, Corrupted());

        // Each sample's rival answer: the likeliest other token of its corrupted run (Str), or of the noised runs' mean.
        var corruptProbs = corruptLogits[.., -1].softmax(-1);
        long Best(Tensor probs) => probs.argsort(descending: true).data<long>().First(i => i != answer);
        var rivals = options.Corruption == TraceCorruption.Str
            ? Enumerable.Range(0, samples).Select(s => Best(corruptProbs[s])).ToArray()
            : Enumerable.Repeat(Best(corruptProbs.mean([0])), samples).ToArray();
        double Score(Tensor last) // [samples, vocabulary] -> the metric, averaged over samples
        {
            var values = Enumerable.Range(0, samples).Select(s => options.Metric switch
            {
                TraceMetric.Prob => last[s].softmax(-1)[answer].item<float>(),
                TraceMetric.LogProb => last[s].log_softmax(-1)[answer].item<float>(),
                _ => last[s][answer].item<float>() - last[s][rivals[s]].item<float>(),
            });
            return values.Average();
        }

        var setup = new TraceSetup(request.Prompt, lm.Tokenizer.TokenLabels(ids), span, answer, lm.Tokenizer.TokenLabel(answer),
            Score(cleanLast.expand(samples, -1)), Score(corruptLogits[.., -1]), noise, layers, window, samples, kinds, request.NoiseSource, options, replaced);
        HookPoint Sub(TraceKind kind, int layer) => kind == TraceKind.Mlp ? HookPoint.Mlp(layer) : HookPoint.Attn(layer);

        // Denoising runs the corrupted input with clean states put in; noising, the clean input with corrupted ones.
        var denoise = options.Direction == TraceDirection.Denoise;
        var (baseInput, Base, from) = denoise ? (input, Corrupted, clean) : (lm.Ids(ids).expand(samples, -1), (Func<Interventions>)Edited, corrupted);
        var scores = new Dictionary<TraceKind, double[][]>();
        foreach (var kind in kinds)
        {
            scores[kind] = new double[ids.Length][];
            for (int t = 0; t < ids.Length; t++)
            {
                scores[kind][t] = new double[layers];
                for (int layer = 0; layer < layers; layer++)
                {
                    cancel.ThrowIfCancellationRequested();
                    using var cell = NewDisposeScope();
                    var patches = new List<(HookPoint Point, Tensor Value)>();
                    if (kind == TraceKind.Hidden)
                    {
                        patches.Add((HookPoint.Resid(layer), from[HookPoint.Resid(layer)][.., t]));
                        if (request.Sever is { } severed)
                            for (int l = layer + 1; l < layers; l++) patches.Add((Sub(severed, l), corrupted[Sub(severed, l)][.., t]));
                    }
                    else
                    {
                        var (first, to) = CausalTrace.WindowAround(layer, window, layers);
                        for (int l = first; l < to; l++) patches.Add((Sub(kind, l), from[Sub(kind, l)][.., t]));
                    }
                    var iv = Base();
                    foreach (var (point, value) in patches)
                        iv.Hook(point, x => { var y = x.clone(); y[.., t] = fraction == 1 ? value : x[.., t] + fraction * (value - x[.., t]); return y; });
                    scores[kind][t][layer] = Score(lm.Model.Forward(baseInput, iv)[.., -1]);
                }
            }
        }
        clean.Dispose();
        corrupted.Dispose();
        return new TraceResult(setup, scores);
    }
}
