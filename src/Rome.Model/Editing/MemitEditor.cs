using Rome.Model.Modeling;
using static TorchSharp.torch;

namespace Rome.Model.Editing;

/// <summary>
/// What a batch edit in progress reports: the fact whose v* (or z) is being searched for (<see cref="Done"/> facts
/// before it, of <see cref="Total"/>) with that search's step, or the layer being written (<see cref="Layer"/>).
/// </summary>
public sealed record BatchProgress(int Done, int Total, EditProgress? Step = null, int? Layer = null)
{
    public string Text => Layer is { } l ? $"Writing layer {l}..." : $"Optimising v* ({Done} of {Total} facts done)...";
}

/// <summary>
/// MEMIT (Meng et al., ICLR 2023; the original's <c>memit_main.py</c>, <c>execute_memit</c>): many facts written at
/// once, spread over several MLP layers. Its steps:
/// <list type="bullet">
/// <item>z (<see cref="ComputeValue"/> with <see cref="MemitHyperParameters.Search"/>, the original's <c>compute_z</c>): for
/// each fact, the residual stream after the last edited layer that makes the model say the new target;</item>
/// <item>for each edited layer l, lowest first, on the model as the layers below leave it: the keys K
/// (<see cref="ComputeKs"/>), the residual R = (z − the current residual stream there) / (layers left), and the
/// least-squares update ΔW = R Kᵀ (λC + K Kᵀ)⁻¹, which maps each key to its share of the residual while the keys C
/// describes move as little as possible (<see cref="Update"/>).</item>
/// </list>
/// Each layer's change is a <see cref="LowRankOverlay"/> of rank at most the batch's size: U = (λC + K Kᵀ)⁻¹K, V = R.
/// </summary>
public sealed class MemitEditor(LanguageModel lm, MemitHyperParameters hp)
{
    public IReadOnlyList<string> Modules => hp.Layers.Select(l => $"h.{l}.mlp.c_proj").ToList();

    /// <summary>How many facts' z are searched for in one batched pass (each fact's search is its own; see <see cref="ComputeValue.VStars"/>).</summary>
    public const int ZBatch = 32;

    /// <summary>
    /// Writes <paramref name="requests"/> on top of <paramref name="previous"/> edits; <paramref name="covariance"/> gives
    /// C for a layer (null: C = I); the caller keeps it.
    /// </summary>
    public AppliedEdit Compute(IReadOnlyList<EditRequest> requests, Func<int, Tensor?> covariance, IReadOnlyList<WeightOverlay>? previous = null,
                               IProgress<BatchProgress>? progress = null, CancellationToken cancel = default, int seed = 0) =>
        Compute("memit", requests, previous ?? [], (layer, k) =>
        {
            // U = (λC + K Kᵀ)⁻¹ K, solved in float64 as the original does.
            var c = covariance(layer);
            using var kkt = k.matmul(k.t());
            using var a = c is null ? eye(k.shape[0], dtype: float64, device: k.device).mul_(hp.MomentUpdateWeight) : c.to(float64) * hp.MomentUpdateWeight;
            return linalg.solve(a.add_(kkt), k);
        }, progress, cancel, seed);

    /// <summary>
    /// The batch update shared with AlphaEdit: z for every fact, then layer by layer U = <paramref name="solve"/>(layer, K)
    /// and V = R, each layer's change applied before the next layer's keys are read.
    /// </summary>
    internal AppliedEdit Compute(string method, IReadOnlyList<EditRequest> requests, IReadOnlyList<WeightOverlay> previous, Func<int, Tensor, Tensor> solve,
                                 IProgress<BatchProgress>? progress, CancellationToken cancel, int seed)
    {
        Check(requests, seed);
        var templates = ContextTemplates.For(lm, hp.ContextTemplateLengthParams, hp.ContextTemplatePrompts, seed);
        var groups = ContextTemplates.GroupSizes(hp.ContextTemplateLengthParams);
        var overlays = new List<LowRankOverlay>();
        try
        {
            using var scope = NewDisposeScope();
            // z for each fact: the residual stream after the last layer that says the new target (z0 + δ), searched
            // for ZBatch facts at a time.
            var zs = new List<Tensor>();
            var probabilities = new List<double>();
            var updates = 0;
            foreach (var chunk in requests.Chunk(ZBatch))
            {
                var done = zs.Count;
                progress?.Report(new BatchProgress(done, requests.Count));
                var facts = chunk.Select(r => new ComputeValue.Fact(r, templates.Select(t => ContextTemplates.Fill(lm, t, r)).ToList(), TargetIds(r))).ToList();
                var stepProgress = progress is null ? null : new SyncProgress<EditProgress>(p => progress.Report(new BatchProgress(done, requests.Count, p)));
                foreach (var z in ComputeValue.VStars(lm, hp.Search, facts, previous, stepProgress, cancel))
                {
                    zs.Add(z.VStar.to(float64));
                    probabilities.Add(z.Probability);
                    updates += z.Updates;
                }
            }
            var zMatrix = stack(zs, 1);   // [model width, facts]
            var plain = requests.Select(r => ContextTemplates.Fill(lm, "{}", r)).ToList();
            var zPoint = HookPoint.Resid(hp.Layers[^1]);
            for (int i = 0; i < hp.Layers.Length; i++)
            {
                cancel.ThrowIfCancellationRequested();
                progress?.Report(new BatchProgress(requests.Count, requests.Count, Layer: hp.Layers[i]));
                using var layerScope = NewDisposeScope();
                var edits = previous.Concat(overlays).ToList();
                var k = ComputeKs.Keys(lm, hp.Layers[i], requests, templates, groups, edits);
                var current = ComputeKs.At(lm, zPoint, plain, edits).to(float64).t();
                var residual = (zMatrix - current) / (hp.Layers.Length - i);   // this layer's share of what is left
                var u = solve(hp.Layers[i], k);
                overlays.Add(new LowRankOverlay(Modules[i], u.to(float32).DetachFromDisposeScope(), residual.to(float32).DetachFromDisposeScope()));
            }
            return new AppliedEdit(method, requests, hp.Layers, overlays, probabilities, updates, templates.ToArray());
        }
        catch
        {
            foreach (var o in overlays) o.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A clear error, naming the fact, unless every request can be written: the layers have MLPs, each subject is in its
    /// prompt, and each prompt and target fit the context window with the longest context template before them.
    /// </summary>
    public void Check(IReadOnlyList<EditRequest> requests, int seed = 0)
    {
        if (requests.Count == 0) throw new RomeException("There are no facts to write.");
        if (hp.Layers.Length == 0) throw new RomeException("MEMIT needs at least one layer to edit.");
        foreach (var layer in hp.Layers) EditableLayer.Require(lm, layer, "MEMIT");
        var prefix = ContextTemplates.For(lm, hp.ContextTemplateLengthParams, hp.ContextTemplatePrompts, seed).Max(t => lm.Tokenizer.Encode(t.Replace("{}", "")).Length);
        for (int i = 0; i < requests.Count; i++)
        {
            try
            {
                lm.Tokenizer.FindSpan(requests[i].Filled, requests[i].Subject);
                var length = lm.Encode(requests[i].Filled).Length + TargetIds(requests[i]).Length;
                if (length + prefix > lm.Config.Positions)
                    throw new RomeException($"the prompt and the new target are {length} tokens long, and up to {prefix} tokens of context go before them; this model reads at most {lm.Config.Positions}.");
            }
            catch (RomeException e)
            {
                throw e.Within(requests[i].Describe(i));
            }
        }
    }

    private int[] TargetIds(EditRequest request) => lm.Tokenizer.Encode(" " + request.Target.Trim());
}
