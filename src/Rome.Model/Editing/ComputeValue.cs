using Rome.Model.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Rome.Model.Editing;

/// <summary>One step of the v* optimisation, for a live loss curve.</summary>
public sealed record EditProgress(int Step, int Steps, double Nll, double Kl, double WeightDecay, double TargetProbability);

/// <summary>v*, the MLP output read at the bare prompt's subject v0, p(target) with v*, and the Adam updates made.</summary>
public sealed record Value(Tensor VStar, Tensor V0, double Probability, int Updates);

/// <summary>
/// How v* is searched for: δ is added after block <see cref="Layer"/> and v0 is read at <see cref="Start"/> (ROME: the
/// MLP's output there; MEMIT's <c>compute_z</c>: the block's output, the residual stream), with Adam for
/// <see cref="Steps"/> [v_num_grad_steps] at <see cref="LearningRate"/> [v_lr]; the loss's decay term weighs
/// |δ| / |v0|² by <see cref="WeightDecay"/> [v_weight_decay], its KL term by <see cref="KlFactor"/> [kl_factor];
/// |δ| ≤ <see cref="ClampNormFactor"/> x |v0| [clamp_norm_factor]; the search stops below <see cref="StopLoss"/>.
/// </summary>
public sealed record ValueSearch(int Layer, HookPoint Start, int Steps, double LearningRate, double WeightDecay, double ClampNormFactor, double KlFactor, double StopLoss);

/// <summary>
/// The value of an edit (the original's <c>compute_v.py</c>): the MLP output v* at the subject's last token that makes
/// the model say the new target.
/// </summary>
public static class ComputeValue
{
    /// <summary>
    /// v* = v0 + δ, where δ is added to the MLP output at the subject's last token of every rewriting prompt and of the
    /// KL prompt "{subject} is a", and minimises, with Adam,
    /// <code>L(δ) = mean NLL(target | xⱼ + prompt) + λ_KL · KL(p(· | subject is a) ‖ p₀) + λ_decay · |δ| / |v0|²</code>
    /// with |δ| clamped to clamp · |v0| after each step. v* and v0 belong to the caller's dispose scope.
    /// </summary>
    public static Value VStar(LanguageModel lm, ValueSearch hp, EditRequest request, IReadOnlyList<(string Text, int LastSubjectToken)> rewriting,
        int[] targetIds, IReadOnlyList<WeightOverlay> previous, IProgress<EditProgress>? progress, CancellationToken cancel) =>
        VStars(lm, hp, [new Fact(request, rewriting, targetIds)], previous, progress, cancel)[0];

    /// <summary>One fact whose v* is searched for: its request, its rewriting prompts and the new target's tokens.</summary>
    public sealed record Fact(EditRequest Request, IReadOnlyList<(string Text, int LastSubjectToken)> Rewriting, int[] TargetIds);

    /// <summary>
    /// <see cref="VStar"/> for many facts on the same model at once (MEMIT's z for a batch): one δ per fact, all in one
    /// batched pass per step. Each fact's loss depends on its own δ only and Adam works element by element, so each
    /// fact follows the path it would follow alone; a fact whose search has stopped keeps its δ while the others go on.
    /// <paramref name="progress"/> reports the facts' mean loss terms and p(target) per step.
    /// </summary>
    public static List<Value> VStars(LanguageModel lm, ValueSearch hp, IReadOnlyList<Fact> facts, IReadOnlyList<WeightOverlay> previous,
                                     IProgress<EditProgress>? progress, CancellationToken cancel)
    {
        var n = facts.Count;
        // Rows: each fact's rewriting prompts + the target's tokens but the last (teacher forcing); then each fact's KL prompt.
        var sequences = new List<int[]>();
        var lookup = new List<long>();
        var rowFact = new List<long>();
        var rows = new List<long>(); var positions = new List<long>(); var targets = new List<long>(); var targetPrompt = new List<long>();
        var promptFact = new List<long>();
        for (int f = 0; f < n; f++)
            foreach (var (text, last) in facts[f].Rewriting)
            {
                var prompt = lm.Encode(text);
                for (int j = 0; j < facts[f].TargetIds.Length; j++)
                {
                    rows.Add(sequences.Count); positions.Add(prompt.Length - 1 + j); targets.Add(facts[f].TargetIds[j]); targetPrompt.Add(promptFact.Count);
                }
                promptFact.Add(f);
                sequences.Add([.. prompt, .. facts[f].TargetIds[..^1]]);
                lookup.Add(last);
                rowFact.Add(f);
            }
        var klRows = sequences.Count;
        var klPositions = new long[n];
        for (int f = 0; f < n; f++)
        {
            var klText = $"{facts[f].Request.Subject} is a";
            klPositions[f] = lm.Tokenizer.FindSpan(klText, facts[f].Request.Subject).Last;
            sequences.Add(lm.Encode(klText));
            lookup.Add(klPositions[f]);
            rowFact.Add(f);
        }

        using var outer = NewDisposeScope();
        var ids = lm.Padded(sequences);
        var mask = nn.functional.one_hot(tensor(lookup.ToArray(), device: lm.Device), ids.shape[1]).unsqueeze(-1).to(float32);
        var rowFactIndex = tensor(rowFact.ToArray(), device: lm.Device);
        var (rowIndex, positionIndex, targetIndex) = (tensor(rows.ToArray(), device: lm.Device), tensor(positions.ToArray(), device: lm.Device), tensor(targets.ToArray(), device: lm.Device));
        // Per target token, its prompt; per prompt, its fact; and the counts that make each fact's means.
        var tokenPrompt = tensor(targetPrompt.ToArray(), device: lm.Device);
        var tokensPerPrompt = tensor(promptFact.Select(f => (float)facts[(int)f].TargetIds.Length).ToArray(), device: lm.Device);
        var promptFactIndex = tensor(promptFact.ToArray(), device: lm.Device);
        var promptsPerFact = tensor(facts.Select(f => (float)f.Rewriting.Count).ToArray(), device: lm.Device);
        var klRowIndex = arange(klRows, klRows + n, device: lm.Device);
        var klPositionIndex = tensor(klPositions, device: lm.Device);

        // δ enters the residual stream additively after block L, so everything up to there is computed once
        // and each step runs only blocks L+1.. on (residual + δ at each row's subject's last token).
        var edits = new Interventions { Overlays = previous };
        Tensor v0, klInit, residual;
        using (no_grad())
        {
            var cache = lm.Model.RunWithCache(ids, [hp.Start, HookPoint.Resid(hp.Layer)], edits);
            // Each fact's first rewriting prompt is its bare prompt: v0 is read there.
            var firstRows = tensor(Enumerable.Range(0, n).Select(f => (long)promptFact.IndexOf(f)).ToArray(), device: lm.Device);
            v0 = cache[hp.Start][firstRows, tensor(lookup.ToArray(), device: lm.Device).index_select(0, firstRows)];
            residual = cache[HookPoint.Resid(hp.Layer)];
            var klResid = lm.Model.Forward(residual[klRows..], edits, startAtLayer: hp.Layer + 1, stopAtLayer: lm.Layers);
            klInit = lm.Model.Unembed(klResid[arange(n, device: lm.Device), klPositionIndex]).log_softmax(-1);
        }

        var delta = new TorchSharp.Modules.Parameter(zeros(n, lm.Config.Embd, device: lm.Device), requires_grad: true);
        var optimizer = optim.Adam([delta], lr: hp.LearningRate);
        // δ and the loss are float32 whatever the model's dtype (δ is cast to it where it enters the residual stream).
        var v0Norms = v0.to(float32).norm(1);
        var maxNorms = (v0Norms * hp.ClampNormFactor).unsqueeze(1);
        var v0NormsSquared = v0Norms * v0Norms;
        // The original's loop: each iteration measures the loss of the current δ and stops there when the loss is
        // below the threshold or the iteration is the last one, so N configured steps make at most N − 1 updates
        // and what is reported (probability, updates) describes the δ that is returned.
        var probabilities = new double[n];
        var updates = new int[n];
        var active = Enumerable.Repeat(true, n).ToArray();
        for (int step = 0; active.Any(a => a); step++)
        {
            cancel.ThrowIfCancellationRequested();
            using var s = NewDisposeScope();
            var resid = lm.Model.Forward(residual + (mask * delta.index_select(0, rowFactIndex).unsqueeze(1)).to(residual.dtype), edits, startAtLayer: hp.Layer + 1, stopAtLayer: lm.Layers);
            var logProbs = lm.Model.Unembed(resid[rowIndex, positionIndex]).log_softmax(-1);
            var picked = logProbs.gather(1, targetIndex.unsqueeze(1)).squeeze(1);
            // Per fact: the mean over its prompts of the per-token mean NLL of the target.
            var promptNll = zeros(promptFact.Count, device: lm.Device).index_add(0, tokenPrompt, -picked, 1) / tokensPerPrompt;
            var nll = zeros(n, device: lm.Device).index_add(0, promptFactIndex, promptNll, 1) / promptsPerFact;
            var klCurrent = lm.Model.Unembed(resid[klRowIndex, klPositionIndex]).log_softmax(-1);
            var kl = hp.KlFactor * (klCurrent.exp() * (klCurrent - klInit)).sum(1);
            var decay = hp.WeightDecay * (delta.norm(1) / v0NormsSquared);
            var loss = nll + kl + decay;
            // p(target) as everywhere in Rome: exp(−mean per-token NLL) per prompt (TargetProbability.Of), averaged.
            var p = (zeros(n, device: lm.Device).index_add(0, promptFactIndex, (-promptNll.detach()).exp(), 1) / promptsPerFact).data<float>().ToArray();
            var losses = loss.detach().data<float>().ToArray();
            for (int f = 0; f < n; f++) if (active[f]) probabilities[f] = p[f];
            progress?.Report(new EditProgress(step + 1, hp.Steps, nll.mean().item<float>(), kl.mean().item<float>(), decay.mean().item<float>(), p.Average()));
            for (int f = 0; f < n; f++) if (active[f] && (losses[f] < hp.StopLoss || step >= hp.Steps - 1)) active[f] = false;
            if (!active.Any(a => a)) break;
            var moving = tensor(active, device: lm.Device).unsqueeze(1);
            var kept = delta.detach().clone();
            optimizer.zero_grad();
            (loss * moving.squeeze(1).to(float32)).sum().backward();
            optimizer.step();
            for (int f = 0; f < n; f++) if (active[f]) updates[f]++;
            using (no_grad())
            {
                // Facts whose search has stopped keep their δ (Adam's momentum would still move them).
                delta.copy_(where(moving, delta, kept));
                var norms = delta.norm(1, keepdim: true);
                delta.copy_(where(norms > maxNorms, delta * (maxNorms / norms), delta));
            }
        }
        // v* and v0 belong to the caller's dispose scope, like the key.
        var vStar = (v0.to(float32) + delta.detach()).to(v0.dtype);
        return Enumerable.Range(0, n).Select(f => new Value(vStar[f].MoveToOuterDisposeScope(), v0[f].MoveToOuterDisposeScope(), probabilities[f], updates[f])).ToList();
    }
}
