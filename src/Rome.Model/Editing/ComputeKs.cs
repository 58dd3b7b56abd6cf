using Rome.Model.Modeling;
using static TorchSharp.torch;

namespace Rome.Model.Editing;

/// <summary>
/// The keys of a batch of edits (the original's <c>compute_ks.py</c>): for each fact, the input of a layer's
/// <c>mlp.c_proj</c> at the subject's last token in the fact's prompt behind each context template, averaged within
/// each group of templates ("{}" alone, then each [length, count] pair's) and then over the groups.
/// </summary>
public static class ComputeKs
{
    /// <summary>K [MLP width, facts] (float64) at <paramref name="layer"/>, on the model as <paramref name="edits"/> leave it.</summary>
    public static Tensor Keys(LanguageModel lm, int layer, IReadOnlyList<EditRequest> requests, IReadOnlyList<string> templates, int[] groupSizes,
                              IReadOnlyList<WeightOverlay> edits)
    {
        using var scope = NewDisposeScope();
        var prompts = requests.SelectMany(r => templates.Select(t => ContextTemplates.Fill(lm, t, r))).ToList();
        var keys = At(lm, HookPoint.MlpKey(layer), prompts, edits).to(float64).view(requests.Count, templates.Count, -1);
        var groups = new List<Tensor>();
        var start = 0;
        foreach (var size in groupSizes)
        {
            groups.Add(keys[.., start..(start + size)].mean([1]));
            start += size;
        }
        return stack(groups).mean([0]).t().contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The activation at <paramref name="point"/> at each prompt's subject's last token, [prompts, width] (the original's
    /// <c>get_module_input_output_at_words</c>), in batches of 64 prompts.
    /// </summary>
    public static Tensor At(LanguageModel lm, HookPoint point, IReadOnlyList<(string Text, int LastSubjectToken)> prompts, IReadOnlyList<WeightOverlay> edits)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var rows = new List<Tensor>();
        foreach (var chunk in prompts.Chunk(64))
        {
            var cache = lm.Model.RunWithCache(lm.Padded(chunk.Select(p => lm.Encode(p.Text)).ToList()), [point], new Interventions { Overlays = edits });
            rows.Add(cache[point][arange(chunk.Length, device: lm.Device), tensor(chunk.Select(p => (long)p.LastSubjectToken).ToArray(), device: lm.Device)]);
        }
        return cat(rows, 0).MoveToOuterDisposeScope();
    }
}
