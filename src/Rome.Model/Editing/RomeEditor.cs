using Rome.Model.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Rome.Model.Editing;

/// <summary>One step of the v* optimisation, for a live loss curve.</summary>
public sealed record EditProgress(int Step, int Steps, double Nll, double Kl, double WeightDecay, double TargetProbability);

/// <summary>An edit made: the overlay, p(target) with its δ, the Adam updates that made δ and the context templates used.</summary>
public sealed record AppliedEdit(EditRequest Request, int Layer, RankOneOverlay Overlay, double TargetProbability, int Updates, string[] ContextTemplates) : IDisposable
{
    public void Dispose() => Overlay.Dispose();
}

/// <summary>
/// ROME (Meng et al. 2022, section 3): a rank-one edit of one MLP's output projection, seen as a key-value memory.
/// <list type="bullet">
/// <item><b>k*</b>, the key: the input of <c>mlp.c_proj</c> at the subject's last token, averaged over the
/// prompt preceded by short context prefixes the model itself generates.</item>
/// <item><b>v*</b>, the value: the MLP output that makes the model say the new target. v* = v0 + δ, where v0 is the
/// MLP output at the subject's last token of the bare prompt; δ is added to the MLP output at the subject's last token
/// in every rewriting prompt and optimised with Adam on NLL(target) + KL(current ‖ original) on "{subject} is a" +
/// weight decay; it is clamped to |δ| ≤ clamp x |v0|.</item>
/// <item><b>C</b> = E[k kᵀ] over a corpus (<see cref="CovarianceStatistics"/>).</item>
/// <item>The update: u = C⁻¹k* (solved, not inverted); W' = W + δ uᵀ / (uᵀk), where k is the bare prompt's own key
/// (as the original code does), so the edited prompt's MLP output becomes exactly v*, and the output for any other
/// key k' changes by δ (uᵀk')/(uᵀk). See <see cref="Update"/>.</item>
/// </list>
/// The result is a <see cref="RankOneOverlay"/>: the model's weights are never written.
/// </summary>
public sealed class RomeEditor(LanguageModel lm, RomeHyperParameters hp)
{
    public string Module => $"h.{hp.Layer}.mlp.c_proj";

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(string, string, int), List<string>> TemplateCache = new();

    /// <summary>
    /// "{}" and a prefix "generated text. {}" for each of <see cref="RomeHyperParameters.ContextTemplateLengthParams"/>'s
    /// [length, count]: text the unedited model samples (top-k 5, seeded) after &lt;|endoftext|&gt;, the prompt token
    /// counted in the length, as the original's <c>get_context_templates</c> (or after the model's own
    /// <see cref="RomeHyperParameters.ContextTemplatePrompts"/>). Braces are removed from the samples (a
    /// generated "{" would break the template in the original). Cached per model fingerprint, lengths and seed.
    /// </summary>
    public List<string> ContextTemplates(int seed = 0) =>
        TemplateCache.GetOrAdd((lm.Fingerprint, string.Join(";", hp.ContextTemplateLengthParams.Select(c => string.Join(",", c))) + "|" + string.Join("|", hp.ContextTemplatePrompts), seed), _ => GenerateTemplates(seed));

    private List<string> GenerateTemplates(int seed)
    {
        var templates = new List<string> { "{}" };
        var i = 0;
        foreach (var spec in hp.ContextTemplateLengthParams)
        {
            if (spec is not [var length, var count] || length < 1 || count < 0)
                throw new RomeException("contextTemplateLengthParams holds [length, count] pairs with length ≥ 1, e.g. [[5, 10], [10, 10]].");
            for (int n = 0; n < count; n++, i++)
            {
                var start = hp.ContextTemplatePrompts[n % hp.ContextTemplatePrompts.Length];
                var (ids, text) = start == "<|endoftext|>" ? ([lm.StartOfText], "") : (lm.Encode(start), start);
                var options = new GenerationOptions { MaxTokens = Math.Max(1, length - ids.Length), TopK = 5, Seed = seed + i };
                var g = TextGenerator.Generate(lm, ids, text, options, Interventions.None);
                templates.Add(g.Text.Replace("{", "").Replace("}", "").Trim() + ". {}");
            }
        }
        return templates;
    }

    /// <summary>Computes the edit of <paramref name="request"/> on top of <paramref name="previous"/> edits (applied first).</summary>
    public AppliedEdit Compute(EditRequest request, Func<Tensor>? covariance, IReadOnlyList<RankOneOverlay>? previous = null,
                               IProgress<EditProgress>? progress = null, CancellationToken cancel = default, int seed = 0)
    {
        request.Validate();
        if (hp.Layer < 0 || hp.Layer >= lm.Layers) throw new RomeException($"Layer {hp.Layer} is out of range (0..{lm.Layers - 1}).");
        previous ??= [];
        var targetIds = lm.Tokenizer.Encode(" " + request.Target.Trim());
        var filled = request.Filled;
        var length = lm.Encode(filled).Length + targetIds.Length;
        if (length > lm.Config.Positions)
            throw new RomeException($"The prompt and the new target are {length} tokens long; this model reads at most {lm.Config.Positions}.");
        lm.Tokenizer.FindSpan(filled, request.Subject); // a clear error when the subject cannot be located

        var templates = ContextTemplates(seed);
        var prefix = templates.Max(t => lm.Tokenizer.Encode(t.Replace("{}", "")).Length);
        if (length + prefix > lm.Config.Positions)
            throw new RomeException($"The prompt and the new target are {length} tokens long, and ROME puts up to {prefix} tokens of context before them; this model reads at most {lm.Config.Positions}.");
        using var scope = NewDisposeScope();
        var (kStar, kPrompt, delta, probability, updates) = Optimise(request, templates, targetIds, previous, progress, cancel);

        var overlay = Update(Module, covariance?.Invoke(), kStar, delta, kPrompt);
        return new AppliedEdit(request, hp.Layer, overlay, probability, updates, templates.ToArray());
    }

    /// <summary>
    /// The rank-one update as an overlay: u = C⁻¹k* (identity C when <paramref name="c"/> is null), and
    /// W' = W + δ uᵀ / (uᵀk) with δ = v* − W k (− b), so W'k = v* and keys with uᵀk' = 0 are unchanged.
    /// k is <paramref name="mapped"/> when given, else k*. As in the original code, the editor maps the bare
    /// prompt's own key (where v0 was read) exactly onto v*, while the direction u comes from the averaged k*:
    /// with a subject at position 0 the bare prompt's key differs much from the prefixed prompts' keys, and
    /// dividing by uᵀk* instead would scale the edit down where it matters most.
    /// </summary>
    public static RankOneOverlay Update(string module, Tensor? c, Tensor kStar, Tensor delta, Tensor? mapped = null)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var u = c is null ? kStar.clone() : linalg.solve(c.to(float64), kStar.to(float64)).to(kStar.dtype);
        return new RankOneOverlay(module, (u / u.dot(mapped ?? kStar)).DetachFromDisposeScope(), delta.detach().clone().DetachFromDisposeScope());
    }

    /// <summary>
    /// Reads the keys and optimises v*. Returns k* (the key at the subject's last token averaged over the
    /// rewriting prompts), the bare prompt's own key, δ = v* − v0, the target probability with that δ and the
    /// number of Adam updates made.
    /// The keys come from the first, unedited pass: the subject precedes the target tokens, so under causal
    /// attention they are the keys of the prompts alone.
    /// </summary>
    private (Tensor KStar, Tensor KPrompt, Tensor Delta, double Probability, int Updates) Optimise(
        EditRequest request, IReadOnlyList<string> templates, int[] targetIds, IReadOnlyList<RankOneOverlay> previous,
        IProgress<EditProgress>? progress, CancellationToken cancel)
    {
        // Rewriting prompts: each template + prompt + the target's tokens but the last (teacher forcing).
        var rewriting = templates.Select(t => Fill(t, request)).ToList();
        var sequences = rewriting.Select(p => lm.Encode(p.Text).Concat(targetIds[..^1]).ToArray()).ToList();
        var promptLengths = rewriting.Select(p => lm.Encode(p.Text).Length).ToList();
        // The KL prompt: "{subject} is a", read at the subject's last token.
        var klText = $"{request.Subject} is a";
        var klIds = lm.Encode(klText);
        var klPosition = lm.Tokenizer.FindSpan(klText, request.Subject).Last;
        sequences.Add(klIds);

        var batch = sequences.Count;
        var lookup = rewriting.Select(p => (long)p.LastSubjectToken).Append(klPosition).ToArray();
        using var ids = lm.Padded(sequences);
        using var mask = nn.functional.one_hot(tensor(lookup, device: lm.Device), ids.shape[1]).unsqueeze(-1).to(float32);

        // Positions whose next token is a target token: (row, position, target id).
        var rows = new List<long>(); var positions = new List<long>(); var targets = new List<long>();
        for (int r = 0; r < rewriting.Count; r++)
            for (int j = 0; j < targetIds.Length; j++)
            {
                rows.Add(r); positions.Add(promptLengths[r] - 1 + j); targets.Add(targetIds[j]);
            }
        using var rowIndex = tensor(rows.ToArray(), device: lm.Device);
        using var positionIndex = tensor(positions.ToArray(), device: lm.Device);
        using var targetIndex = tensor(targets.ToArray(), device: lm.Device);

        // δ enters the residual stream additively after block L, so everything up to there is computed once
        // and each step runs only blocks L+1.. on (residual + δ at the subject's last token).
        Tensor v0, klInit, residual, kStar, kPrompt;
        using (var s0 = NewDisposeScope())
        using (no_grad())
        {
            Tensor? output = null, resid = null, keys = null;
            var iv = new Interventions { Overlays = previous }
                .Capture(HookPoint.MlpKey(hp.Layer), k => keys = k)
                .Capture(HookPoint.Mlp(hp.Layer), o => output = o)
                .Capture(HookPoint.Resid(hp.Layer), r => resid = r);
            var hidden = lm.Model.FinalHidden(ids, iv);
            var promptRows = arange(rewriting.Count, device: lm.Device);
            var subjectKeys = keys![promptRows, tensor(lookup[..rewriting.Count], device: lm.Device)];
            kStar = subjectKeys.mean([0]).MoveToOuterDisposeScope();
            kPrompt = subjectKeys[0].MoveToOuterDisposeScope(); // templates[0] is "{}": the bare prompt
            v0 = output![0, lookup[0]].MoveToOuterDisposeScope();
            residual = resid!.MoveToOuterDisposeScope();
            klInit = lm.Model.Head(hidden[batch - 1, klPosition]).log_softmax(-1).MoveToOuterDisposeScope();
        }

        var delta = new TorchSharp.Modules.Parameter(zeros(lm.Config.Embd, device: lm.Device), requires_grad: true);
        var optimizer = optim.Adam([delta], lr: hp.LearningRate);
        // δ and the loss are float32 whatever the model's dtype (δ is cast to it where it enters the residual stream).
        var v0Norm = v0.to(float32).norm().item<float>();
        var maxNorm = hp.ClampNormFactor * v0Norm;
        var v0NormSquared = v0Norm * v0Norm;
        // The original's loop: each iteration measures the loss of the current δ and stops there when the loss is
        // below the threshold or the iteration is the last one, so N configured steps make at most N − 1 updates
        // and what is reported (probability, updates) describes the δ that is returned.
        double probability = 0;
        int updates = 0;
        for (int step = 0; ; step++)
        {
            cancel.ThrowIfCancellationRequested();
            using var s = NewDisposeScope();
            var hidden = lm.Model.FinalHiddenFrom(hp.Layer + 1, residual + (mask * delta).to(residual.dtype), new Interventions { Overlays = previous });
            var logProbs = lm.Model.Head(hidden[rowIndex, positionIndex]).log_softmax(-1);
            var picked = logProbs.gather(1, targetIndex.unsqueeze(1)).squeeze(1);
            // Mean over prompts of the per-token mean NLL of the target.
            var nll = -picked.sum() / (rewriting.Count * targetIds.Length);
            var klCurrent = lm.Model.Head(hidden[batch - 1, klPosition]).log_softmax(-1);
            var kl = hp.KlFactor * (klCurrent.exp() * (klCurrent - klInit)).sum();
            var decay = hp.WeightDecay * (delta.norm() / v0NormSquared);
            var loss = nll + kl + decay;
            // p(target) as everywhere in Rome: exp(−mean per-token NLL) per prompt (CounterFactMetrics.TargetProbabilities), averaged.
            probability = picked.detach().view(rewriting.Count, targetIds.Length).mean([1]).exp().mean().item<float>();
            progress?.Report(new EditProgress(step + 1, hp.Steps, nll.item<float>(), kl.item<float>(), decay.item<float>(), probability));
            if (loss.item<float>() < hp.StopLoss || step >= hp.Steps - 1) break;
            optimizer.zero_grad();
            loss.backward();
            optimizer.step();
            updates++;
            using (no_grad())
            {
                var norm = delta.norm().item<float>();
                if (norm > maxNorm) delta.mul_(maxNorm / norm);
            }
        }
        klInit.Dispose();
        v0.Dispose();
        residual.Dispose();
        return (kStar, kPrompt, delta.detach().clone().MoveToOuterDisposeScope(), probability, updates);
    }

    private (string Text, int LastSubjectToken) Fill(string template, EditRequest request)
    {
        var text = template.Replace("{}", request.Filled);
        var subjectStart = template.IndexOf("{}", StringComparison.Ordinal) + request.Prompt.IndexOf("{}", StringComparison.Ordinal);
        return (text, lm.Tokenizer.FindSpan(text, request.Subject, subjectStart).Last);
    }

}
