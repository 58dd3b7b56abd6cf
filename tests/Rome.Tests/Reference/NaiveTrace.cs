using Rome.Model.Modeling;
using static TorchSharp.torch;
using Rome.Model.Tracing;

namespace Rome.Tests;

/// <summary>
/// Causal tracing the straightforward way, as the paper describes it and as the original <c>trace_with_patch</c> runs
/// it: one full forward pass per cell, the subject's embeddings noised, one clean state (or window of states) put
/// back at one token, and with severing the later MLP or attention outputs at that token frozen at the corrupted
/// run's. The reference the fast <see cref="CausalTrace"/> is checked against (tests) and timed against (bench);
/// written from the model's public hooks only, sharing none of the fast trace's code.
/// </summary>
public static class NaiveTrace
{
    public static TraceResult Run(LanguageModel lm, TraceRequest request, double noise, CancellationToken cancel = default)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var ids = lm.Encode(request.Prompt);
        var span = lm.Tokenizer.FindSpan(request.Prompt, request.Subject);
        var window = request.Window ?? CausalTrace.DefaultWindow(lm.Layers);
        var kinds = request.Kinds.Distinct().ToList();
        int layers = lm.Layers, samples = request.Samples;
        var input = lm.Ids(ids).expand(samples, -1);
        Interventions Edited() => new() { Overlays = request.Edits };

        // The same noise as the fast trace draws: N(0, ν²) per sample, subject token and dimension, from the seed.
        using var generator = new TorchSharp.torch.Generator((ulong)request.Seed, lm.Device);
        var noiseTensor = (randn([samples, span.Length, lm.Config.Embd], generator: generator, device: lm.Device) * noise).to(lm.Model.TokenEmbedding.dtype);
        var positions = tensor(span.Positions(), device: lm.Device);
        Interventions Corrupted() => Edited().Hook(HookPoint.Embed, x => x.index_add(1, positions, noiseTensor, 1.0));

        var points = Enumerable.Range(0, layers).SelectMany(l => new[] { HookPoint.Resid(l), HookPoint.Mlp(l), HookPoint.Attn(l) }).ToList();
        var (cleanLogits, clean) = lm.Model.RunWithLogits(lm.Ids(ids), points, Edited());
        var cleanProbs = cleanLogits[0, -1].softmax(-1);
        var answer = (int)cleanProbs.argmax().item<long>();
        var (corruptLogits, corrupted) = lm.Model.RunWithLogits(input, points, Corrupted());
        double P(Tensor logits) => logits[.., -1].softmax(-1)[.., answer].mean().item<float>();

        var setup = new TraceSetup(request.Prompt, lm.Tokenizer.TokenLabels(ids), span, answer, lm.Tokenizer.TokenLabel(answer),
            cleanProbs[answer].item<float>(), P(corruptLogits), noise, layers, window, samples, kinds, request.NoiseSource);
        HookPoint Sub(TraceKind kind, int layer) => kind == TraceKind.Mlp ? HookPoint.Mlp(layer) : HookPoint.Attn(layer);

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
                        patches.Add((HookPoint.Resid(layer), clean[HookPoint.Resid(layer)][.., t]));
                        if (request.Sever is { } severed)
                            for (int l = layer + 1; l < layers; l++) patches.Add((Sub(severed, l), corrupted[Sub(severed, l)][.., t]));
                    }
                    else
                    {
                        var (from, to) = CausalTrace.WindowAround(layer, window, layers);
                        for (int l = from; l < to; l++) patches.Add((Sub(kind, l), clean[Sub(kind, l)][.., t]));
                    }
                    var iv = Corrupted();
                    foreach (var (point, value) in patches)
                        iv.Hook(point, x => { var y = x.clone(); y[.., t] = value; return y; });
                    scores[kind][t][layer] = P(lm.Model.Forward(input, iv));
                }
            }
        }
        clean.Dispose();
        corrupted.Dispose();
        return new TraceResult(setup, scores);
    }
}
