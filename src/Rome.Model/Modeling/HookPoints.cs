using static TorchSharp.torch;

namespace Rome.Model.Modeling;

/// <summary>The activations a forward pass exposes, after TransformerLens' named hook points.</summary>
public enum Site
{
    /// <summary>Token + position embeddings, the input of block 0 (<c>hook_embed</c>). Layer is ignored.</summary>
    Embed,
    /// <summary>A block's residual-stream output (<c>blocks.L.hook_resid_post</c>): the "hidden state" of the paper.</summary>
    Resid,
    /// <summary>A block's attention output after <c>attn.c_proj</c> (<c>blocks.L.hook_attn_out</c>).</summary>
    Attn,
    /// <summary>A block's MLP output after <c>mlp.c_proj</c> (<c>blocks.L.hook_mlp_out</c>).</summary>
    Mlp,
    /// <summary>The MLP key: the input of <c>mlp.c_proj</c>, after the GELU (<c>blocks.L.mlp.hook_post</c>). ROME's k.</summary>
    MlpKey,
}

/// <summary>One named place in the forward pass. Activations there are [batch, tokens, width].</summary>
public readonly record struct HookPoint(Site Site, int Layer = 0)
{
    public static HookPoint Embed => new(Site.Embed);
    public static HookPoint Resid(int layer) => new(Site.Resid, layer);
    public static HookPoint Attn(int layer) => new(Site.Attn, layer);
    public static HookPoint Mlp(int layer) => new(Site.Mlp, layer);
    public static HookPoint MlpKey(int layer) => new(Site.MlpKey, layer);

    public string Name => Site switch
    {
        Site.Embed => "hook_embed",
        Site.Resid => $"blocks.{Layer}.hook_resid_post",
        Site.Attn => $"blocks.{Layer}.hook_attn_out",
        Site.Mlp => $"blocks.{Layer}.hook_mlp_out",
        _ => $"blocks.{Layer}.mlp.hook_post",
    };

    public override string ToString() => Name;
}

/// <summary>
/// What one forward pass should do besides computing: hooks that read or replace activations, and
/// rank-one weight overlays (edits). It is an argument of the forward pass, never state of the model,
/// so two callers sharing one model can never see each other's hooks or edits, and nothing is left
/// installed after a call, whatever happens in it.
/// </summary>
public sealed class Interventions
{
    private readonly Dictionary<HookPoint, List<Func<Tensor, Tensor>>> _hooks = new();

    /// <summary>Edits to apply on the fly, in order.</summary>
    public IReadOnlyList<WeightOverlay> Overlays { get; init; } = [];

    /// <summary>No hooks and no edits: a new instance each time, so a hook added to it can never reach another call.</summary>
    public static Interventions None => new();

    /// <summary>A copy with the same hooks and edits, to add hooks to without changing this one.</summary>
    public Interventions Copy()
    {
        var copy = new Interventions { Overlays = Overlays };
        foreach (var (point, hooks) in _hooks) copy._hooks[point] = [.. hooks];
        return copy;
    }

    /// <summary>
    /// Adds a hook. It receives the activation and returns the activation to continue with (the same
    /// tensor to only read it). Hooks at one point run in the order they were added.
    /// </summary>
    public Interventions Hook(HookPoint point, Func<Tensor, Tensor> hook)
    {
        if (!_hooks.TryGetValue(point, out var list)) _hooks[point] = list = [];
        list.Add(hook);
        return this;
    }

    /// <summary>
    /// Copies the activation at <paramref name="point"/> (detached) into <paramref name="sink"/>. The copy
    /// outlives the forward pass: it belongs to the caller's dispose scope (or to the caller, if none).
    /// </summary>
    public Interventions Capture(HookPoint point, Action<Tensor> sink) =>
        Hook(point, x => { sink(x.detach().clone().MoveToOuterDisposeScope()); return x; });

    /// <summary>
    /// Overwrites the activation at <paramref name="point"/> for the given token positions with
    /// <paramref name="values"/> ([batch or 1, positions.Length, width]) in every batch row selected.
    /// </summary>
    public Interventions Patch(HookPoint point, long[] positions, Tensor values, long[]? rows = null) =>
        Hook(point, x =>
        {
            var y = x.clone();
            using var pos = tensor(positions, device: x.device);
            if (rows is null)
                y.index_copy_(1, pos, values.to(x.dtype).expand(x.shape[0], positions.Length, x.shape[2]));
            else
                foreach (var r in rows)
                    using (var row = y[r]) row.index_copy_(0, pos, values.to(x.dtype).reshape(positions.Length, x.shape[2]));
            return y;
        });

    internal Tensor Run(HookPoint point, Tensor x)
    {
        if (!_hooks.TryGetValue(point, out var list)) return x;
        foreach (var hook in list)
        {
            var y = hook(x);
            if (!ReferenceEquals(y, x)) x = y;
        }
        return x;
    }
}
