using Rome.Model.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Rome.Model.Tracing;

/// <summary>What is restored in a corrupted run: a block's hidden state, or a window of MLP or attention outputs.</summary>
public enum TraceKind { Hidden, Mlp, Attn }

/// <summary>A causal-tracing request (Meng et al. 2022, section 2).</summary>
public sealed record TraceRequest
{
    public required string Prompt { get; init; }
    public required string Subject { get; init; }
    public IReadOnlyList<TraceKind> Kinds { get; init; } = [TraceKind.Hidden, TraceKind.Mlp, TraceKind.Attn];
    /// <summary>Corrupted samples per cell (the paper: 10).</summary>
    public int Samples { get; init; } = 10;
    /// <summary>Absolute noise std ν. Null: <see cref="NoiseLevel.Multiplier"/> x σ of subject embeddings.</summary>
    public double? Noise { get; init; }
    /// <summary>Consecutive MLP/attention layers restored together. Null: <see cref="CausalTrace.DefaultWindow"/>.</summary>
    public int? Window { get; init; }
    public int Seed { get; init; }
    /// <summary>
    /// Sever the path through this sublayer (Mlp or Attn) at the restored token for the layers after the
    /// restored one (the paper's Figure 4): only meaningful with <see cref="TraceKind.Hidden"/>.
    /// </summary>
    public TraceKind? Sever { get; init; }
}

/// <summary>What a trace measures, known before any cell: the answer and the high and low scores.</summary>
public sealed record TraceSetup(
    string Prompt, string[] Tokens, TokenSpan Subject, int AnswerToken, string Answer,
    double HighScore, double LowScore, double Noise, int Layers, int Window, int Samples);

public abstract record TraceEvent;
public sealed record TraceStarted(TraceSetup Setup) : TraceEvent;
/// <summary>One layer of one grid: the mean probability of the answer with that (token, layer) restored, per token.</summary>
public sealed record TraceColumn(TraceKind Kind, int Layer, double[] Scores, double Progress) : TraceEvent;

/// <summary>The grids of one trace: Scores[kind][token][layer]; indirect effect = score − low score.</summary>
public sealed record TraceResult(TraceSetup Setup, IReadOnlyDictionary<TraceKind, double[][]> Scores)
{
    public double IndirectEffect(TraceKind kind, int token, int layer) => Scores[kind][token][layer] - Setup.LowScore;

    /// <summary>Every cell as CSV: kind, token, whether it is a subject token, layer, score and indirect effect.</summary>
    public string ToCsv()
    {
        var sb = new System.Text.StringBuilder("kind,token_index,token,subject,layer,score,indirect_effect\n");
        foreach (var (kind, grid) in Scores)
            for (int t = 0; t < grid.Length; t++)
                for (int l = 0; l < grid[t].Length; l++)
                    sb.Append(System.Globalization.CultureInfo.InvariantCulture,
                        $"{kind.ToString().ToLowerInvariant()},{t},\"{Setup.Tokens[t].Replace("\"", "\"\"")}\",{Setup.Subject.Contains(t)},{l},{grid[t][l]:G6},{IndirectEffect(kind, t, l):G6}\n");
        return sb.ToString();
    }

    public static TraceResult Collect(IEnumerable<TraceEvent> events)
    {
        TraceSetup? setup = null;
        var grids = new Dictionary<TraceKind, double[][]>();
        foreach (var e in events)
        {
            if (e is TraceStarted s) setup = s.Setup;
            else if (e is TraceColumn c)
            {
                if (!grids.TryGetValue(c.Kind, out var grid))
                    grids[c.Kind] = grid = Enumerable.Range(0, setup!.Tokens.Length).Select(_ => new double[setup.Layers]).ToArray();
                for (int t = 0; t < c.Scores.Length; t++) grid[t][c.Layer] = c.Scores[t];
            }
        }
        return new TraceResult(setup ?? throw new InvalidOperationException("empty trace"), grids);
    }
}

/// <summary>
/// Causal tracing. Clean run: the top-1 next token is the answer, its probability the high score. Corrupted
/// runs: Gaussian noise N(0, ν²) added to the subject tokens' embeddings, <see cref="TraceRequest.Samples"/>
/// times; the low score is the answer's mean probability then. Each cell restores one clean state (a hidden
/// state, or a window of MLP/attention outputs around a layer) at one token into the corrupted runs and
/// reports the answer's mean probability.
/// <para>
/// The fast path computes exactly the same numbers as <see cref="RunNaive"/> for less: tokens before the
/// subject are untouched by the noise (causal attention), so their cells equal the low score; the corrupted
/// run below the restored layer is shared by every cell of a layer; only the last position's logits are
/// computed; and all tokens x samples of one layer run as one batch.
/// </para>
/// Hooks are arguments of each forward pass, so nothing stays installed on the model whatever happens.
/// </summary>
public sealed class CausalTrace(LanguageModel lm)
{
    /// <summary>The paper's window is 10 for 48-layer GPT-2 XL; smaller models get the same proportion (at least 2).</summary>
    public static int DefaultWindow(int layers) => Math.Clamp((int)Math.Round(layers * 10 / 48.0, MidpointRounding.AwayFromZero), 2, 10);

    /// <summary>Layers restored for a cell at <paramref name="layer"/>: [layer − w/2, layer + ⌈w/2⌉), clipped.</summary>
    public static (int From, int To) WindowAround(int layer, int window, int layers) =>
        (Math.Max(0, layer - window / 2), Math.Min(layers, layer + (window + 1) / 2));

    public IEnumerable<TraceEvent> Run(TraceRequest request, double noise, CancellationToken cancel = default)
    {
        using var prepared = Prepare(request, noise);
        yield return new TraceStarted(prepared.Setup);
        var kinds = request.Kinds.Distinct().ToList();
        int total = kinds.Count * lm.Layers, done = 0;
        foreach (var kind in kinds)
            for (int layer = 0; layer < lm.Layers; layer++)
            {
                cancel.ThrowIfCancellationRequested();
                var scores = Column(prepared, kind, layer, request.Sever);
                yield return new TraceColumn(kind, layer, scores, ++done / (double)total);
            }
    }

    /// <summary>The straightforward algorithm (one full forward pass per cell), kept as the reference for benchmarks.</summary>
    public IEnumerable<TraceEvent> RunNaive(TraceRequest request, double noise, CancellationToken cancel = default)
    {
        using var prepared = Prepare(request, noise);
        yield return new TraceStarted(prepared.Setup);
        var setup = prepared.Setup;
        var kinds = request.Kinds.Distinct().ToList();
        int total = kinds.Count * lm.Layers, done = 0;
        foreach (var kind in kinds)
            for (int layer = 0; layer < lm.Layers; layer++)
            {
                var scores = new double[setup.Tokens.Length];
                for (int t = 0; t < scores.Length; t++)
                {
                    cancel.ThrowIfCancellationRequested();
                    using var scope = NewDisposeScope();
                    using var noGrad = no_grad();
                    var iv = prepared.Corrupting();
                    var rows = Enumerable.Repeat((long)t, setup.Samples).ToArray();
                    foreach (var point in Restored(kind, layer, setup.Window))
                        iv.Hook(point, Restore(prepared.Clean[point], rows, setup.Tokens.Length));
                    var logits = lm.Model.Forward(prepared.Ids.expand(setup.Samples, -1), iv);
                    scores[t] = logits[.., -1].softmax(-1)[.., setup.AnswerToken].mean().item<float>();
                }
                yield return new TraceColumn(kind, layer, scores, ++done / (double)total);
            }
    }

    /// <summary>The hook points a cell restores.</summary>
    private IEnumerable<HookPoint> Restored(TraceKind kind, int layer, int window)
    {
        if (kind == TraceKind.Hidden) { yield return HookPoint.Resid(layer); yield break; }
        var (from, to) = WindowAround(layer, window, lm.Layers);
        for (int l = from; l < to; l++) yield return kind == TraceKind.Mlp ? HookPoint.Mlp(l) : HookPoint.Attn(l);
    }

    private double[] Column(Prepared p, TraceKind kind, int layer, TraceKind? sever)
    {
        var setup = p.Setup;
        var count = setup.Tokens.Length;
        var scores = new double[count];
        var first = setup.Subject.First;
        for (int t = 0; t < first; t++) scores[t] = setup.LowScore;

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var tokens = count - first;
        var rows = Enumerable.Range(first, tokens).SelectMany(t => Enumerable.Repeat((long)t, setup.Samples)).ToArray();
        var points = Restored(kind, layer, setup.Window).ToList();
        var start = kind == TraceKind.Hidden ? layer : points[0].Layer;

        var iv = new Interventions();
        foreach (var point in points) iv.Hook(point, Restore(p.Clean[point], rows, count));
        if (sever is { } s && kind == TraceKind.Hidden)
            for (int l = layer + 1; l < lm.Layers; l++)
            {
                var point = s == TraceKind.Mlp ? HookPoint.Mlp(l) : HookPoint.Attn(l);
                iv.Hook(point, Restore(p.Corrupted[point].repeat(tokens, 1, 1), rows, count));
            }

        var input = p.Entering[start].repeat(tokens, 1, 1);
        var probs = lm.Model.ForwardFrom(start, input, iv, lastOnly: true)[.., -1].softmax(-1)[.., setup.AnswerToken];
        var means = probs.view(tokens, setup.Samples).mean([1]).data<float>().ToArray();
        for (int k = 0; k < tokens; k++) scores[first + k] = means[k];
        return scores;
    }

    /// <summary>A hook that sets x[r, positions[r], :] = values[r or 0, positions[r], :] for every batch row r.</summary>
    private static Func<Tensor, Tensor> Restore(Tensor values, long[] positions, int count)
    {
        var mask = nn.functional.one_hot(tensor(positions, device: values.device), count).unsqueeze(-1).to(values.dtype);
        return x => x * (1 - mask) + values * mask;
    }

    private Prepared Prepare(TraceRequest request, double noise)
    {
        if (request.Samples < 1) throw new RomeException("Samples must be at least 1.");
        if (noise <= 0 || double.IsNaN(noise)) throw new RomeException("The noise level must be positive.");
        var window = request.Window ?? DefaultWindow(lm.Layers);
        if (window < 1) throw new RomeException("The window must be at least 1 layer.");
        if (request.Sever is TraceKind.Hidden) throw new RomeException("Sever the MLP or the attention, not the hidden state.");
        var ids = lm.Encode(request.Prompt);
        var span = lm.Tokenizer.FindSpan(request.Prompt, request.Subject);
        return new Prepared(lm, ids, span, request, noise, window);
    }

    /// <summary>Clean and corrupted activations of one prompt, shared by every cell.</summary>
    private sealed class Prepared : IDisposable
    {
        private readonly List<Tensor> _owned = [];
        private readonly Tensor _noise;
        public TraceSetup Setup { get; }
        public Tensor Ids { get; }
        public Dictionary<HookPoint, Tensor> Clean { get; } = new();
        public Dictionary<HookPoint, Tensor> Corrupted { get; } = new();
        /// <summary>The corrupted residual stream entering each block ([samples, tokens, width]).</summary>
        public Tensor[] Entering { get; }
        private readonly TokenSpan _span;

        public Prepared(LanguageModel lm, int[] ids, TokenSpan span, TraceRequest request, double noise, int window)
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            _span = span;
            Ids = lm.Ids(ids);
            using var generator = new TorchSharp.torch.Generator((ulong)request.Seed, lm.Device);
            _noise = (randn([request.Samples, span.Length, lm.Config.Embd], generator: generator, device: lm.Device) * noise).to(lm.Model.TokenEmbedding.dtype);

            var clean = new Interventions();
            var points = Enumerable.Range(0, lm.Layers).SelectMany(l => new[] { HookPoint.Resid(l), HookPoint.Mlp(l), HookPoint.Attn(l) }).ToList();
            foreach (var point in points) clean.Capture(point, t => Clean[point] = t);
            var cleanProbs = lm.Model.Forward(Ids, clean, lastOnly: true)[0, -1].softmax(-1);
            var answer = (int)cleanProbs.argmax().item<long>();

            Entering = new Tensor[lm.Layers];
            var corrupt = Corrupting().Capture(HookPoint.Embed, t => Entering[0] = t);
            for (int l = 0; l < lm.Layers; l++)
            {
                var layer = l;
                if (l + 1 < lm.Layers) corrupt.Capture(HookPoint.Resid(l), t => Entering[layer + 1] = t);
                foreach (var point in new[] { HookPoint.Mlp(l), HookPoint.Attn(l) }) corrupt.Capture(point, t => Corrupted[point] = t);
            }
            var low = lm.Model.Forward(Ids.expand(request.Samples, -1), corrupt, lastOnly: true)[.., -1].softmax(-1)[.., answer].mean().item<float>();

            var tokens = ids.Select(lm.Tokenizer.TokenText).ToArray();
            Setup = new TraceSetup(request.Prompt, tokens, span, answer, lm.Tokenizer.TokenText(answer),
                cleanProbs[answer].item<float>(), low, noise, lm.Layers, window, request.Samples);

            // Keep what the cells need beyond this constructor; the scope frees every intermediate. (No scope
            // stays open across the trace's yields: it would capture the consumer's tensors.)
            foreach (var t in Clean.Values.Concat(Corrupted.Values).Concat(Entering).Append(_noise).Append(Ids))
                _owned.Add(t.DetachFromDisposeScope());
        }

        /// <summary>Interventions that add this trace's noise to the subject's embeddings (one sample per batch row).</summary>
        public Interventions Corrupting()
        {
            var positions = _span.Positions();
            return new Interventions().Hook(HookPoint.Embed, x =>
            {
                using var pos = tensor(positions, device: x.device);
                return x.index_add(1, pos, _noise, 1.0);
            });
        }

        public void Dispose() { foreach (var t in _owned) t.Dispose(); }
    }
}
