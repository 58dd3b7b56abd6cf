using Rome.Model.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Rome.Model.Editing.Baselines;

/// <summary>Settings of the fine-tuning baselines (the original ft_main.py's names in brackets).</summary>
public sealed record FineTuneHyperParameters
{
    /// <summary>The layer whose <c>mlp.c_proj</c> weights are tuned [layers].</summary>
    public int Layer { get; init; }
    /// <summary>[num_steps]</summary>
    public int Steps { get; init; } = 25;
    /// <summary>[lr]</summary>
    public double LearningRate { get; init; } = 5e-4;
    /// <summary>FT+L: every weight stays within ε of its original value (an L∞ ball) [norm_constraint]; null for plain FT.</summary>
    public double? NormConstraint { get; init; }
    /// <summary>Stop when the loss falls below this.</summary>
    public double StopLoss { get; init; } = 1e-2;
}

/// <summary>
/// The paper's fine-tuning baselines: FT tunes one layer's MLP output weights with Adam on the new target's NLL for
/// the rewrite prompt; FT+L also keeps every weight within ε of its original value. The result is a
/// <see cref="DenseOverlay"/> (ΔW), so the shared weights are never written and a case's change is dropped with it.
/// </summary>
public static class FineTune
{
    public static DenseOverlay Compute(LanguageModel lm, EditRequest request, FineTuneHyperParameters hp, CancellationToken cancel = default)
    {
        EditableLayer.Require(lm, hp.Layer, "fine-tuning");
        var module = $"h.{hp.Layer}.mlp.c_proj";
        var weight = lm.Model.Linear(module).Weight;
        var prompt = lm.Encode(request.Filled);
        var target = lm.Tokenizer.Encode(" " + request.Target.Trim());
        using var ids = lm.Ids(prompt.Concat(target[..^1]).ToArray());
        using var positions = arange(prompt.Length - 1, prompt.Length - 1 + target.Length, device: lm.Device);
        using var targets = tensor(target.Select(t => (long)t).ToArray(), device: lm.Device);

        var delta = new TorchSharp.Modules.Parameter(zeros_like(weight), requires_grad: true);
        var optimizer = optim.Adam([delta], lr: hp.LearningRate);
        for (int step = 0; step < hp.Steps; step++)
        {
            cancel.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var iv = new Interventions { Overlays = [new DenseOverlay(module, delta)] };
            var logits = lm.Model.Forward(ids, iv)[0].index_select(0, positions);
            var loss = nn.functional.cross_entropy(logits, targets);
            if (loss.item<float>() < hp.StopLoss) break;
            optimizer.zero_grad();
            loss.backward();
            optimizer.step();
            if (hp.NormConstraint is { } eps)
                using (no_grad()) delta.clamp_(-eps, eps);
        }
        return new DenseOverlay(module, delta.detach().clone());
    }
}
