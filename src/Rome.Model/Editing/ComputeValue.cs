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
        int[] targetIds, IReadOnlyList<WeightOverlay> previous, IProgress<EditProgress>? progress, CancellationToken cancel)
    {
        // Rewriting prompts + the target's tokens but the last (teacher forcing); then the KL prompt.
        var sequences = rewriting.Select(p => lm.Encode(p.Text).Concat(targetIds[..^1]).ToArray()).ToList();
        var promptLengths = rewriting.Select(p => lm.Encode(p.Text).Length).ToList();
        var klText = $"{request.Subject} is a";
        var klPosition = lm.Tokenizer.FindSpan(klText, request.Subject).Last;
        sequences.Add(lm.Encode(klText));

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
        var edits = new Interventions { Overlays = previous };
        Tensor v0, klInit, residual;
        using (var s0 = NewDisposeScope())
        using (no_grad())
        {
            var cache = lm.Model.RunWithCache(ids, [hp.Start, HookPoint.Resid(hp.Layer)], edits);
            v0 = cache[hp.Start][0, lookup[0]].MoveToOuterDisposeScope(); // rewriting[0] is the bare prompt
            residual = cache[HookPoint.Resid(hp.Layer)].MoveToOuterDisposeScope();
            var klResid = lm.Model.Forward(residual[(batch - 1)..], edits, startAtLayer: hp.Layer + 1, stopAtLayer: lm.Layers);
            klInit = lm.Model.Unembed(klResid[0, klPosition]).log_softmax(-1).MoveToOuterDisposeScope();
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
            var resid = lm.Model.Forward(residual + (mask * delta).to(residual.dtype), edits, startAtLayer: hp.Layer + 1, stopAtLayer: lm.Layers);
            var logProbs = lm.Model.Unembed(resid[rowIndex, positionIndex]).log_softmax(-1);
            var picked = logProbs.gather(1, targetIndex.unsqueeze(1)).squeeze(1);
            // Mean over prompts of the per-token mean NLL of the target.
            var nll = -picked.sum() / (rewriting.Count * targetIds.Length);
            var klCurrent = lm.Model.Unembed(resid[batch - 1, klPosition]).log_softmax(-1);
            var kl = hp.KlFactor * (klCurrent.exp() * (klCurrent - klInit)).sum();
            var decay = hp.WeightDecay * (delta.norm() / v0NormSquared);
            var loss = nll + kl + decay;
            // p(target) as everywhere in Rome: exp(−mean per-token NLL) per prompt (TargetProbability.Of), averaged.
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
        residual.Dispose();
        // v* and v0 belong to the caller's dispose scope, like the key.
        return new Value((v0.to(float32) + delta.detach()).to(v0.dtype), v0, probability, updates);
    }
}
