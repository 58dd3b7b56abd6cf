using Rome.Model.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Rome.Model.Tracing;

/// <summary>
/// Causal tracing. Clean run: the top-1 next token is the answer, its probability the high score. Corrupted
/// runs: Gaussian noise N(0, ν²) added to the subject tokens' embeddings, <see cref="TraceRequest.Samples"/>
/// times; the low score is the answer's mean probability then. Each cell restores one clean state (a hidden
/// state, or a window of MLP/attention outputs around a layer) at one token into the corrupted runs and
/// reports the answer's mean probability.
/// <para>
/// <see cref="Run"/> computes exactly the numbers of the straightforward algorithm, one full forward pass per cell
/// (kept as the reference of the tests and benchmarks, <c>NaiveTrace</c>), for about a sixth of the work at GPT-2-small shape:
/// <list type="bullet">
/// <item>tokens before the subject are untouched by the noise (causal attention), so their cells are the low score;</item>
/// <item>a cell's run equals the corrupted run until its first restored block, so it starts there, from the
/// corrupted states (a staircase: each block runs the batch of cells already started);</item>
/// <item>tokens before the restored one are unaffected by it, so only the tokens from it onwards are computed,
/// attending to the corrupted run's cached keys and values of the earlier ones; the runs of all traced tokens are
/// packed side by side in one sequence, so one batch holds every token of every started cell;</item>
/// <item>only the last token's probability matters, so the top block and the unembedding compute only that token.</item>
/// </list>
/// Results stream as blocks of cells (<see cref="TraceCells"/>), one per batch.
/// </para>
/// <para>
/// Beyond the paper (<see cref="TraceRequest.Options"/>): the corrupted runs may replace the subject's tokens instead of
/// noising them (<see cref="TokenReplacement"/>); a cell may report log p(answer) or the logit difference against the
/// corrupted run's answer; and it may corrupt one state in the clean run instead of restoring one in the corrupted run
/// (noising), which is the same staircase with the two runs' roles swapped: the base run cells start from is then the
/// clean one. The paper's settings give exactly the grids they always gave.
/// </para>
/// Hooks are arguments of each forward pass, so nothing stays installed on the model whatever happens.
/// </summary>
/// <param name="lm">The model to trace.</param>
/// <param name="batchBytes">The largest activation of one batch, in bytes (see <see cref="DefaultBatchBytes"/>).</param>
public sealed class CausalTrace(LanguageModel lm, long batchBytes = CausalTrace.DefaultBatchBytes)
{
    /// <summary>
    /// 31 MiB: as big as batches get while every tensor stays under 32 MiB. glibc's malloc maps fresh pages for
    /// each bigger one, and the page faults then cost more than the arithmetic (measured on GPT-2-small shape).
    /// </summary>
    public const long DefaultBatchBytes = 31L << 20;

    /// <summary>Batch rows x tokens per block run within the batch bytes (the MLP's inner activation is the largest).</summary>
    private long RowBudget => Math.Max(1, batchBytes / (Math.Max(lm.Config.Inner, 3 * lm.Config.Embd) * lm.Model.TokenEmbedding.element_size()));

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
        var kinds = setup.Kinds;
        var layers = Enumerable.Range(0, lm.Layers).ToArray();
        double total = kinds.Count * setup.Tokens.Length * lm.Layers, done = 0;
        foreach (var kind in kinds)
        {
            cancel.ThrowIfCancellationRequested();
            var before = Enumerable.Range(0, setup.Subject.First).ToArray();
            if (before.Length > 0)
            {
                done += before.Length * layers.Length;
                yield return new TraceCells(kind, before, layers, before.Select(_ => layers.Select(_ => setup.Baseline).ToArray()).ToArray(), done / total);
            }
            var patches = layers.Select(l => Patches(kind, l, setup.Window, request.Sever).ToArray()).ToArray();
            foreach (var tokens in TokenGroups(setup))
            {
                var packed = tokens.Sum(t => setup.Tokens.Length - t);
                var cellsPerRun = (int)Math.Max(1, RowBudget / (setup.Samples * packed));
                foreach (var cells in layers.OrderBy(l => patches[l][0].Point.Layer).Chunk(cellsPerRun))
                {
                    var scores = Staircase(prepared, kind, patches, tokens, cells, cancel);
                    cancel.ThrowIfCancellationRequested();
                    done += tokens.Length * cells.Length;
                    yield return new TraceCells(kind, tokens, cells, scores, done / total);
                }
            }
        }
    }

    /// <summary>
    /// The subject's and later tokens, in groups whose runs, packed, leave room in <see cref="RowBudget"/> for
    /// several cells' samples (one group for short prompts).
    /// </summary>
    private IEnumerable<int[]> TokenGroups(TraceSetup setup)
    {
        var group = new List<int>();
        var packed = 0;
        for (int t = setup.Subject.First; t < setup.Tokens.Length; t++)
        {
            var length = setup.Tokens.Length - t;
            if (group.Count > 0 && (long)setup.Samples * (packed + length) * 4 > RowBudget)
            {
                yield return group.ToArray();
                (group, packed) = ([], 0);
            }
            group.Add(t);
            packed += length;
        }
        if (group.Count > 0) yield return group.ToArray();
    }

    /// <summary>A value put in at the traced token: the restored run's (the clean run's, when denoising), or (severing) the run's own.</summary>
    internal readonly record struct Patch(HookPoint Point, bool Restored);

    /// <summary>What the cell (<paramref name="kind"/>, <paramref name="layer"/>) puts in, in layer order.</summary>
    private IEnumerable<Patch> Patches(TraceKind kind, int layer, int window, TraceKind? sever)
    {
        if (kind == TraceKind.Hidden)
        {
            yield return new(HookPoint.Resid(layer), Restored: true);
            if (sever is { } s)
                for (int l = layer + 1; l < lm.Layers; l++)
                    yield return new(s == TraceKind.Mlp ? HookPoint.Mlp(l) : HookPoint.Attn(l), Restored: false);
            yield break;
        }
        var (from, to) = WindowAround(layer, window, lm.Layers);
        for (int l = from; l < to; l++) yield return new(kind == TraceKind.Mlp ? HookPoint.Mlp(l) : HookPoint.Attn(l), Restored: true);
    }

    /// <summary>
    /// The cells (<paramref name="tokens"/> x <paramref name="cells"/>, as scores[token][cell]) as a staircase over
    /// the blocks: a cell joins the batch after its first restored block J, its samples' runs for all the tokens
    /// packed side by side (see <see cref="Packing"/>), each starting from the base run's states (the corrupted run
    /// when denoising, the clean run when noising) with the traced token's state after block J put in
    /// (<see cref="Prepared.JoinState"/>); each block then runs every joined cell at once. <paramref name="cells"/>
    /// come in the order they join.
    /// </summary>
    private double[][] Staircase(Prepared p, TraceKind kind, Patch[][] patches, int[] tokens, int[] cells, CancellationToken cancel)
    {
        var setup = p.Setup;
        int layers = lm.Layers, samples = setup.Samples;
        int Join(int cell) => patches[cell][0].Point.Layer;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var packing = new Packing(tokens, setup.Tokens.Length, lm.Device);
        using var prefix = p.Cache.Prefix(setup.Tokens.Length);

        Tensor? x = null; // [joined cells x samples, packed tokens, width]; after the top block, only each run's last token
        var joined = new List<int>();
        for (int j = Join(cells[0]); j < layers; j++)
        {
            cancel.ThrowIfCancellationRequested();
            var top = j == layers - 1;
            var (positions, first) = top ? (packing.Positions[packing.Ends], packing.First[packing.Ends]) : (packing.Positions, packing.First);
            if (x is not null)
                x = lm.Model.ForwardBlock(j, x, p.Hooks(patches, joined, j, positions, first), new PackedRuns(prefix, packing.Positions, packing.Mask, top ? packing.Ends : null));
            var joining = cells.Where(c => Join(c) == j).ToList();
            if (joining.Count == 0) continue;
            var state = where(first.unsqueeze(1), p.JoinState(kind, j).index_select(1, positions), p.Base[HookPoint.Resid(j)].index_select(1, positions));
            x = x is null ? state.repeat(joining.Count, 1, 1) : cat([x, state.repeat(joining.Count, 1, 1)], 0);
            joined.AddRange(joining);
        }
        var means = p.Score(x!, batchBytes).view(joined.Count, samples, tokens.Length).mean([1]).data<float>().ToArray();
        var scores = tokens.Select(_ => new double[cells.Length]).ToArray();
        for (int i = 0; i < joined.Count; i++)
            for (int k = 0; k < tokens.Length; k++) scores[k][Array.IndexOf(cells, joined[i])] = means[i * tokens.Length + k];
        return scores;
    }

    /// <summary>
    /// Several traced tokens' runs side by side in one sequence: for each traced token t, the tokens t..end. They
    /// attend to the base run's tokens before t (a cached prefix: a token restored at t cannot change them)
    /// and, causally, to their own run; the top block computes only each run's last token.
    /// </summary>
    private sealed class Packing
    {
        /// <summary>Each packed token's position in the prompt.</summary>
        public Tensor Positions { get; }
        /// <summary>Whether a packed token is its run's traced token (where states are restored).</summary>
        public Tensor First { get; }
        /// <summary>Indices of each run's last token (the prompt's last token), in run order.</summary>
        public Tensor Ends { get; }
        /// <summary>Which keys (prefix, then packed tokens) each packed token sees.</summary>
        public Tensor Mask { get; }

        public Packing(int[] tokens, int count, Device device)
        {
            var runs = tokens.SelectMany((t, run) => Enumerable.Range(t, count - t).Select(position => (run, t, position))).ToArray();
            var mask = new bool[runs.Length, count + runs.Length];
            for (int a = 0; a < runs.Length; a++)
            {
                for (int c = 0; c < runs[a].t; c++) mask[a, c] = true;
                for (int b = a; b >= 0 && runs[b].run == runs[a].run; b--) mask[a, count + b] = true;
            }
            Positions = tensor(runs.Select(r => (long)r.position).ToArray(), device: device);
            First = tensor(runs.Select(r => r.position == r.t).ToArray(), device: device);
            Ends = tensor(Enumerable.Range(0, runs.Length).Where(a => runs[a].position == count - 1).Select(a => (long)a).ToArray(), device: device);
            Mask = tensor(mask, device: device);
        }
    }

    internal Prepared Prepare(TraceRequest request, double noise)
    {
        if (request.Samples < 1) throw new RomeException("Samples must be at least 1.");
        var options = request.Options;
        if (options.Corruption == TraceCorruption.Noise && (noise <= 0 || double.IsNaN(noise))) throw new RomeException("The noise level must be positive.");
        if (request.Sever is not null && options.Direction == TraceDirection.Noise) throw new RomeException("Severing restores states (denoising): trace in that direction to sever.");
        var window = request.Window ?? DefaultWindow(lm.Layers);
        if (window < 1) throw new RomeException("The window must be at least 1 layer.");
        if (request.Sever is TraceKind.Hidden) throw new RomeException("Sever the MLP or the attention, not the hidden state.");
        var ids = lm.Encode(request.Prompt);
        var span = lm.Tokenizer.FindSpan(request.Prompt, request.Subject);
        return new Prepared(lm, ids, span, request, noise, window);
    }

    /// <summary>
    /// The two runs of one prompt every cell draws on: the base run, which cells start from and whose keys and values
    /// earlier tokens keep, and the restored run, whose states cells put in. Denoising (the paper) restores the clean
    /// run's states in the corrupted runs; noising puts the corrupted runs' states in the clean run. The corrupted runs,
    /// one per sample, noise the subject's embeddings or replace its tokens (<see cref="TokenReplacement"/>).
    /// </summary>
    internal sealed class Prepared : IDisposable
    {
        private readonly List<Tensor> _owned = [];
        private readonly Tensor? _noise;
        private readonly TokenSpan _span;
        private readonly LanguageModel _lm;
        private readonly IReadOnlyList<WeightOverlay> _edits = [];
        private readonly Dictionary<(TraceKind, int), Tensor> _joinStates = new();
        /// <summary>Per sample, the corrupted run's answer (for <see cref="TraceMetric.LogitDiff"/>): [samples].</summary>
        private readonly Tensor _rival;
        public TraceSetup Setup { get; }
        /// <summary>The restored run's activations ([1 or samples, tokens, width]) at every block's Resid, Mlp and Attn.</summary>
        public ActivationCache Restored { get; }
        /// <summary>The base run's activations ([samples, tokens, width]) at Embed and every block's Resid, Mlp and Attn.</summary>
        public ActivationCache Base { get; }
        /// <summary>The base run's keys and values.</summary>
        public KvCache Cache { get; }
        /// <summary>The base run's token ids ([samples, tokens]); <see cref="BaseInterventions"/> runs it as the base run.</summary>
        public Tensor BaseInput { get; }
        private readonly bool _noisedBase;

        public Prepared(LanguageModel lm, int[] ids, TokenSpan span, TraceRequest request, double noise, int window)
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            _span = span;
            _lm = lm;
            var options = request.Options;
            var input = lm.Ids(ids);
            var points = Enumerable.Range(0, lm.Layers).SelectMany(l => new[] { HookPoint.Resid(l), HookPoint.Mlp(l), HookPoint.Attn(l) }).ToList();
            _edits = request.Edits;
            var (cleanLogits, clean) = lm.Model.RunWithLogits(input, points, Edited(), lastOnly: true);
            var cleanLast = cleanLogits[.., -1];
            var answer = (int)cleanLast[0].argmax().item<long>();

            // The corrupted runs, one row per sample.
            Tensor corruptInput;
            Interventions corrupting;
            IReadOnlyList<string>? replaced = null;
            if (options.Corruption == TraceCorruption.Str)
            {
                var chosen = TokenReplacement.Choose(lm, request.Prompt, request.Subject, answer, request.ReplacementPool, request.Samples, request.Seed, Edited());
                replaced = chosen.Select(r => r.Subject).ToList();
                corruptInput = cat(chosen.Select(r => lm.Ids(r.Ids)).ToList(), 0);
                corrupting = Edited();
            }
            else
            {
                using var generator = new TorchSharp.torch.Generator((ulong)request.Seed, lm.Device);
                _noise = (randn([request.Samples, span.Length, lm.Config.Embd], generator: generator, device: lm.Device) * noise).to(lm.Model.TokenEmbedding.dtype);
                corruptInput = input.expand(request.Samples, -1);
                corrupting = Corrupting();
            }
            var samples = (int)corruptInput.shape[0];

            Cache = new KvCache(lm.Layers);
            Tensor corruptLogits;
            if (options.Direction == TraceDirection.Denoise)
            {
                (corruptLogits, Base) = lm.Model.RunWithLogits(corruptInput, points.Prepend(HookPoint.Embed), corrupting, Cache, lastOnly: true);
                Restored = clean;
                (BaseInput, _noisedBase) = (corruptInput, _noise is not null);
            }
            else
            {
                (corruptLogits, Restored) = lm.Model.RunWithLogits(corruptInput, points, corrupting, lastOnly: true);
                BaseInput = input.expand(samples, -1);
                (_, Base) = lm.Model.RunWithLogits(BaseInput, points.Prepend(HookPoint.Embed), Edited(), Cache, lastOnly: true);
                clean.Dispose();
            }
            var corruptLast = corruptLogits[.., -1];
            // The rival answer: each replacement's own top token, or the likeliest other token of the noised runs' mean distribution.
            using var answerIndex = tensor((long)answer, device: lm.Device);
            _rival = options.Corruption == TraceCorruption.Str
                ? corruptLast.index_fill(1, answerIndex, double.NegativeInfinity).argmax(1)
                : corruptLast.softmax(-1).mean([0]).index_fill(0, answerIndex, -1).argmax().expand(samples).contiguous();

            var setup = new TraceSetup(request.Prompt, lm.Tokenizer.TokenLabels(ids), span, answer, lm.Tokenizer.TokenLabel(answer), 0, 0,
                options.Corruption == TraceCorruption.Noise ? noise : 0, lm.Layers, window, samples, request.Kinds.Distinct().ToList(), request.NoiseSource, options, replaced);
            Setup = setup;
            // The high score: p(answer) of the clean run (its logit difference against each sample's rival, averaged).
            var high = (options.Metric == TraceMetric.LogitDiff ? Metric(cleanLast.expand(samples, -1), arange(samples, device: lm.Device)) : Metric(cleanLast, zeros(1, dtype: int64, device: lm.Device))).mean().item<float>();
            var low = Metric(corruptLast, arange(samples, device: lm.Device)).mean().item<float>();
            if (!float.IsFinite(low))
                throw new RomeException($"With noise {noise:G3} the corrupted model's output is not a number; use a smaller noise (3s is the paper's).");
            Setup = setup with { HighScore = high, LowScore = low };

            // Keep what the cells need beyond this constructor; the scope frees every intermediate. (No scope
            // stays open across the trace's yields: it would capture the consumer's tensors.)
            foreach (var t in Restored.Values.Concat(Base.Values)) t.DetachFromDisposeScope();
            _owned.Add(_rival.DetachFromDisposeScope());
            _owned.Add(BaseInput.DetachFromDisposeScope());
            if (_noise is not null) _owned.Add(_noise.DetachFromDisposeScope());
        }

        /// <summary>New interventions that carry the traced model's edits.</summary>
        private Interventions Edited() => new() { Overlays = _edits };

        /// <summary>Interventions that add this trace's noise to the subject's embeddings (one sample per batch row).</summary>
        private Interventions Corrupting()
        {
            var positions = _span.Positions();
            return Edited().Hook(HookPoint.Embed, x =>
            {
                using var pos = tensor(positions, device: x.device);
                return x.index_add(1, pos, _noise!, 1.0);
            });
        }

        /// <summary>Runs the model as the base run: with the edits, and the noise when the base run is the noised one.</summary>
        public Interventions BaseInterventions() => _noisedBase ? Corrupting() : Edited();

        /// <summary>The base run's residual stream entering block <paramref name="layer"/>.</summary>
        public Tensor Entering(int layer) => Base[layer == 0 ? HookPoint.Embed : HookPoint.Resid(layer - 1)];

        /// <summary>
        /// Token t's state after block <paramref name="layer"/> when that block's <paramref name="kind"/> is restored
        /// at t in the base runs, for every t at once ([1 or samples, tokens, width]). Hidden: the restored run's state.
        /// MLP or attention: the block run on the base run's input with that sublayer's restored output put in at every
        /// token, which is exact for each token on its own: attention at t sees only the base run's tokens up to t, and
        /// the rest of the block works token by token.
        /// </summary>
        public Tensor JoinState(TraceKind kind, int layer)
        {
            if (kind == TraceKind.Hidden) return Restored[HookPoint.Resid(layer)];
            if (_joinStates.TryGetValue((kind, layer), out var state)) return state;
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var point = kind == TraceKind.Mlp ? HookPoint.Mlp(layer) : HookPoint.Attn(layer);
            var restored = Edited().Hook(point, x => Restored[point].expand_as(x));
            state = _lm.Model.ForwardBlock(layer, Entering(layer), restored).DetachFromDisposeScope();
            _owned.Add(state);
            return _joinStates[(kind, layer)] = state;
        }

        /// <summary>The run <paramref name="patch"/> takes its values from: [1 or samples, tokens, width].</summary>
        public Tensor Source(Patch patch) => (patch.Restored ? Restored : Base)[patch.Point];

        /// <summary>
        /// Hooks for block <paramref name="layer"/> run on the rows of <paramref name="cells"/> (Samples rows each)
        /// over packed tokens at <paramref name="positions"/>: each cell's patches at that block replace the
        /// <paramref name="first"/> tokens, where its runs' traced tokens are.
        /// </summary>
        public Interventions Hooks(Patch[][] patches, IReadOnlyList<int> cells, int layer, Tensor positions, Tensor first)
        {
            var iv = Edited();
            foreach (var point in cells.SelectMany(c => patches[c]).Select(p => p.Point).Where(p => p.Layer == layer).Distinct())
            {
                var found = cells.Select(c => patches[c].Where(p => p.Point == point).Cast<Patch?>().FirstOrDefault()).ToArray();
                var patch = found.OfType<Patch>().DistinctBy(p => p.Restored).Single(); // one source per point
                var value = Source(patch).index_select(1, positions).unsqueeze(0); // [1, 1 or samples, packed, width]
                var rows = tensor(found.Select(p => p is not null).ToArray(), device: value.device).view(-1, 1, 1, 1);
                var mask = rows.logical_and(first.view(1, 1, -1, 1)); // [cells, 1, packed, 1]
                iv.Hook(point, x => where(mask, value, x.view(cells.Count, Setup.Samples, x.shape[1], x.shape[2])).view(x.shape));
            }
            return iv;
        }

        /// <summary>
        /// The metric of last-token logits ([n, vocabulary] to [n]), row i belonging to sample <paramref name="sample"/>[i]:
        /// p(answer), log p(answer), or logit(answer) − logit(that sample's rival).
        /// </summary>
        public Tensor Metric(Tensor logits, Tensor sample) => Setup.Settings.Metric switch
        {
            TraceMetric.Prob => logits.softmax(-1)[.., Setup.AnswerToken],
            TraceMetric.LogProb => logits.log_softmax(-1)[.., Setup.AnswerToken],
            _ => logits[.., Setup.AnswerToken] - logits.gather(1, _rival.index_select(0, sample).unsqueeze(1)).squeeze(1),
        };

        /// <summary>
        /// The metric from each final residual state ([rows, tokens, width] to [rows, tokens]; row r is sample r mod
        /// samples), <paramref name="batchBytes"/> of logits at a time.
        /// </summary>
        public Tensor Score(Tensor resid, long batchBytes)
        {
            var flat = resid.reshape(-1, resid.shape[^1]);
            var perRow = resid.shape[1];
            var slice = Math.Max(1, batchBytes / (_lm.Config.VocabSize * flat.element_size()));
            var slices = new List<Tensor>();
            for (long from = 0; from < flat.shape[0]; from += slice)
            {
                var count = Math.Min(slice, flat.shape[0] - from);
                using var logits = _lm.Model.Unembed(flat.narrow(0, from, count));
                using var sample = arange(from, from + count, device: logits.device).div(perRow, rounding_mode: RoundingMode.floor).remainder(Setup.Samples);
                slices.Add(Metric(logits, sample));
            }
            return cat(slices, 0).view(resid.shape[..^1]);
        }

        public void Dispose()
        {
            foreach (var t in _owned) t.Dispose();
            Restored.Dispose();
            Base.Dispose();
            Cache.Dispose();
        }
    }
}
