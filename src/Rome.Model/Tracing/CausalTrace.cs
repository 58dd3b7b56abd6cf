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
/// <summary>One token's row of one grid: the mean probability of the answer with that (token, layer) restored, per layer.</summary>
public sealed record TraceRow(TraceKind Kind, int Token, double[] Scores, double Progress) : TraceEvent;

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
            else if (e is TraceRow r)
            {
                if (!grids.TryGetValue(r.Kind, out var grid))
                    grids[r.Kind] = grid = new double[setup!.Tokens.Length][];
                grid[r.Token] = r.Scores;
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
/// <see cref="Run"/> computes exactly the numbers of <see cref="RunNaive"/> (one full forward pass per cell) for
/// less, one token's row at a time:
/// <list type="bullet">
/// <item>tokens before the subject are untouched by the noise (causal attention), so their cells are the low score;</item>
/// <item>a cell's run equals the corrupted run until its first restored block, so it starts there, from the corrupted
/// states (a staircase: each block runs the batch of cells already started);</item>
/// <item>tokens before the restored one are unaffected by it, so only tokens from it onwards are computed, attending
/// to the corrupted run's cached keys and values of the earlier ones;</item>
/// <item>only the last token's logits matter, so the top block and the unembedding compute only that token.</item>
/// </list>
/// </para>
/// Hooks are arguments of each forward pass, so nothing stays installed on the model whatever happens.
/// </summary>
public sealed class CausalTrace(LanguageModel lm)
{
    /// <summary>Batch rows x tokens run together at most; a row's cells run in several groups beyond it (bounds memory on big models).</summary>
    private const int RowBudget = 16_384;

    /// <summary>The paper's window is 10 for 48-layer GPT-2 XL; smaller models get the same proportion (at least 2).</summary>
    public static int DefaultWindow(int layers) => Math.Clamp((int)Math.Round(layers * 10 / 48.0, MidpointRounding.AwayFromZero), 2, 10);

    /// <summary>Layers restored for a cell at <paramref name="layer"/>: [layer − w/2, layer + ⌈w/2⌉), clipped.</summary>
    public static (int From, int To) WindowAround(int layer, int window, int layers) =>
        (Math.Max(0, layer - window / 2), Math.Min(layers, layer + (window + 1) / 2));

    public IEnumerable<TraceEvent> Run(TraceRequest request, double noise, CancellationToken cancel = default)
    {
        using var prepared = Prepare(request, noise);
        var setup = prepared.Setup;
        yield return new TraceStarted(setup);
        var kinds = request.Kinds.Distinct().ToList();
        int total = kinds.Count * setup.Tokens.Length, done = 0;
        foreach (var kind in kinds)
            for (int t = 0; t < setup.Tokens.Length; t++)
            {
                cancel.ThrowIfCancellationRequested();
                var scores = t < setup.Subject.First
                    ? Enumerable.Repeat(setup.LowScore, lm.Layers).ToArray()
                    : Row(prepared, kind, t, request.Sever, cancel);
                yield return new TraceRow(kind, t, scores, ++done / (double)total);
            }
    }

    /// <summary>The straightforward algorithm (one full forward pass per cell), kept as the reference for benchmarks.</summary>
    public IEnumerable<TraceEvent> RunNaive(TraceRequest request, double noise, CancellationToken cancel = default)
    {
        using var prepared = Prepare(request, noise);
        var setup = prepared.Setup;
        yield return new TraceStarted(setup);
        var kinds = request.Kinds.Distinct().ToList();
        int total = kinds.Count * setup.Tokens.Length, done = 0;
        foreach (var kind in kinds)
            for (int t = 0; t < setup.Tokens.Length; t++)
            {
                var scores = new double[lm.Layers];
                for (int layer = 0; layer < lm.Layers; layer++)
                {
                    cancel.ThrowIfCancellationRequested();
                    using var scope = NewDisposeScope();
                    using var noGrad = no_grad();
                    var iv = prepared.Corrupting();
                    foreach (var patch in Patches(kind, layer, setup.Window, request.Sever))
                    {
                        var value = prepared.Value(patch, t);
                        iv.Hook(patch.Point, x => { var y = x.clone(); y[.., t] = value; return y; });
                    }
                    var logits = lm.Model.Forward(prepared.Ids.expand(setup.Samples, -1), iv);
                    scores[layer] = logits[.., -1].softmax(-1)[.., setup.AnswerToken].mean().item<float>();
                }
                yield return new TraceRow(kind, t, scores, ++done / (double)total);
            }
    }

    /// <summary>A value put in at the traced token: the clean run's, or (severing) the corrupted run's own.</summary>
    private readonly record struct Patch(HookPoint Point, bool Clean);

    /// <summary>What the cell (<paramref name="kind"/>, <paramref name="layer"/>) puts in, in layer order.</summary>
    private IEnumerable<Patch> Patches(TraceKind kind, int layer, int window, TraceKind? sever)
    {
        if (kind == TraceKind.Hidden)
        {
            yield return new(HookPoint.Resid(layer), Clean: true);
            if (sever is { } s)
                for (int l = layer + 1; l < lm.Layers; l++)
                    yield return new(s == TraceKind.Mlp ? HookPoint.Mlp(l) : HookPoint.Attn(l), Clean: false);
            yield break;
        }
        var (from, to) = WindowAround(layer, window, lm.Layers);
        for (int l = from; l < to; l++) yield return new(kind == TraceKind.Mlp ? HookPoint.Mlp(l) : HookPoint.Attn(l), Clean: true);
    }

    /// <summary>
    /// Every layer's cell for token <paramref name="t"/>, as a staircase: a cell joins the batch after its first
    /// restored block J, as the corrupted states of tokens t.. with token t's own state after block J put in (see
    /// <see cref="Prepared.JoinState"/>); each block then runs every joined cell's samples at once.
    /// </summary>
    private double[] Row(Prepared p, TraceKind kind, int t, TraceKind? sever, CancellationToken cancel)
    {
        var setup = p.Setup;
        int layers = lm.Layers, samples = setup.Samples, tokens = setup.Tokens.Length - t;
        var patches = Enumerable.Range(0, layers).Select(l => Patches(kind, l, setup.Window, sever).ToArray()).ToArray();
        int Join(int cell) => patches[cell][0].Point.Layer;
        var scores = new double[layers];

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var prefix = t > 0 ? p.Cache.Prefix(t) : null;
        var groupSize = Math.Max(1, RowBudget / (samples * tokens));
        foreach (var group in Enumerable.Range(0, layers).OrderBy(Join).Chunk(groupSize))
        {
            Tensor? x = null; // [joined cells x samples, tokens t.., width]; the top block leaves only the last token
            var joined = new List<int>();
            for (int j = Join(group[0]); j < layers; j++)
            {
                cancel.ThrowIfCancellationRequested();
                if (x is not null) x = lm.Model.ForwardBlock(j, x, p.Hooks(patches, joined, j, t, tokens), prefix, lastOnly: j == layers - 1);
                var joining = group.Where(c => Join(c) == j).ToList();
                if (joining.Count == 0) continue;

                var at = p.JoinState(kind, j)[.., t..(t + 1)].expand(samples, -1, -1).repeat(joining.Count, 1, 1);
                var state = tokens == 1 ? at : cat([at, p.Corrupted[HookPoint.Resid(j)][.., (t + 1)..].repeat(joining.Count, 1, 1)], 1);
                if (j == layers - 1) state = state[.., ^1..];
                x = x is null ? state : cat([x, state], 0);
                joined.AddRange(joining);
            }
            var probs = lm.Model.Unembed(x![.., -1]).softmax(-1)[.., setup.AnswerToken];
            var means = probs.view(joined.Count, samples).mean([1]).data<float>().ToArray();
            for (int i = 0; i < joined.Count; i++) scores[joined[i]] = means[i];
        }
        return scores;
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
        private readonly TokenSpan _span;
        private readonly LanguageModel _lm;
        private readonly Dictionary<(TraceKind, int), Tensor> _joinStates = new();
        public TraceSetup Setup { get; }
        public Tensor Ids { get; }
        /// <summary>The clean run's activations ([1, tokens, width]) at every block's Resid, Mlp and Attn.</summary>
        public Dictionary<HookPoint, Tensor> Clean { get; } = new();
        /// <summary>The corrupted runs' activations ([samples, tokens, width]) at Embed and every block's Resid, Mlp and Attn.</summary>
        public Dictionary<HookPoint, Tensor> Corrupted { get; } = new();
        /// <summary>The corrupted runs' keys and values.</summary>
        public KvCache Cache { get; }

        public Prepared(LanguageModel lm, int[] ids, TokenSpan span, TraceRequest request, double noise, int window)
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            _span = span;
            _lm = lm;
            Ids = lm.Ids(ids);
            using var generator = new TorchSharp.torch.Generator((ulong)request.Seed, lm.Device);
            _noise = (randn([request.Samples, span.Length, lm.Config.Embd], generator: generator, device: lm.Device) * noise).to(lm.Model.TokenEmbedding.dtype);

            var points = Enumerable.Range(0, lm.Layers).SelectMany(l => new[] { HookPoint.Resid(l), HookPoint.Mlp(l), HookPoint.Attn(l) }).ToList();
            var clean = new Interventions();
            foreach (var point in points) clean.Capture(point, t => Clean[point] = t);
            var cleanProbs = lm.Model.Forward(Ids, clean, lastOnly: true)[0, -1].softmax(-1);
            var answer = (int)cleanProbs.argmax().item<long>();

            var corrupt = Corrupting();
            foreach (var point in points.Prepend(HookPoint.Embed)) corrupt.Capture(point, t => Corrupted[point] = t);
            Cache = new KvCache(lm.Layers);
            var low = lm.Model.Forward(Ids.expand(request.Samples, -1), corrupt, Cache, lastOnly: true)[.., -1].softmax(-1)[.., answer].mean().item<float>();

            var tokens = ids.Select(lm.Tokenizer.TokenText).ToArray();
            Setup = new TraceSetup(request.Prompt, tokens, span, answer, lm.Tokenizer.TokenText(answer),
                cleanProbs[answer].item<float>(), low, noise, lm.Layers, window, request.Samples);

            // Keep what the cells need beyond this constructor; the scope frees every intermediate. (No scope
            // stays open across the trace's yields: it would capture the consumer's tensors.)
            foreach (var t in Clean.Values.Concat(Corrupted.Values).Append(_noise).Append(Ids))
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

        /// <summary>The corrupted residual stream entering block <paramref name="layer"/>.</summary>
        public Tensor Entering(int layer) => Corrupted[layer == 0 ? HookPoint.Embed : HookPoint.Resid(layer - 1)];

        /// <summary>
        /// Token t's state after block <paramref name="layer"/> when that block's <paramref name="kind"/> is restored
        /// at t in the corrupted runs, for every t at once ([1 or samples, tokens, width]). Hidden: the clean state.
        /// MLP or attention: the block run on the corrupted input with that sublayer's clean output put in at every
        /// token, which is exact for each token on its own: attention at t sees only corrupted tokens up to t, and
        /// the rest of the block works token by token.
        /// </summary>
        public Tensor JoinState(TraceKind kind, int layer)
        {
            if (kind == TraceKind.Hidden) return Clean[HookPoint.Resid(layer)];
            if (_joinStates.TryGetValue((kind, layer), out var state)) return state;
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var point = kind == TraceKind.Mlp ? HookPoint.Mlp(layer) : HookPoint.Attn(layer);
            var restored = new Interventions().Hook(point, x => Clean[point].expand_as(x));
            state = _lm.Model.ForwardBlock(layer, Entering(layer), restored).DetachFromDisposeScope();
            _owned.Add(state);
            return _joinStates[(kind, layer)] = state;
        }

        /// <summary>What <paramref name="patch"/> puts in at token <paramref name="t"/>: [1 or samples, width].</summary>
        public Tensor Value(Patch patch, int t) => (patch.Clean ? Clean : Corrupted)[patch.Point][.., t];

        /// <summary>
        /// Hooks for block <paramref name="layer"/> run on the rows of <paramref name="cells"/> (Samples rows each),
        /// whose first of <paramref name="tokens"/> tokens is token <paramref name="t"/>: each cell's patches at
        /// that block replace token t. (A block computing only the last of several tokens has nothing to patch.)
        /// </summary>
        public Interventions Hooks(Patch[][] patches, IReadOnlyList<int> cells, int layer, int t, int tokens)
        {
            var iv = new Interventions();
            var samples = Setup.Samples;
            foreach (var point in cells.SelectMany(c => patches[c]).Select(p => p.Point).Where(p => p.Layer == layer).Distinct())
            {
                var values = new List<Tensor>();
                var rows = new List<bool>();
                foreach (var cell in cells)
                {
                    var patch = patches[cell].Where(p => p.Point == point).Cast<Patch?>().FirstOrDefault();
                    var value = patch is { } found ? Value(found, t) : Clean[point][.., t];
                    values.Add(value.expand(samples, -1));
                    rows.AddRange(Enumerable.Repeat(patch is not null, samples));
                }
                var replacement = cat(values, 0);
                var mask = rows.All(r => r) ? null : tensor(rows.ToArray(), device: replacement.device).unsqueeze(1);
                iv.Hook(point, x =>
                {
                    if (x.shape[1] != tokens) return x;
                    var y = x.clone();
                    y[.., 0] = mask is null ? replacement : where(mask, replacement, x[.., 0]);
                    return y;
                });
            }
            return iv;
        }

        public void Dispose()
        {
            foreach (var t in _owned) t.Dispose();
            Cache.Dispose();
        }
    }
}
