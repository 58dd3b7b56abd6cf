using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Rome.Model.Modeling;

/// <summary>
/// A decoder-only transformer, written to be read in one sitting (after nanoGPT's model.py): GPT-2, and the families
/// that differ from it in a few named places (<see cref="ModelConfig"/>): rotary positions (GPT-J, NeoX, Llama,
/// Qwen2), RMSNorm and a gated MLP (Llama, Qwen2), grouped-query attention, parallel residual blocks (GPT-J, NeoX), an
/// untied head. Whatever the family, modules carry GPT-2's Hugging Face names (<c>wte</c>, <c>h.N.ln_1</c>,
/// <c>h.N.attn.c_attn</c> [q | k | v], <c>h.N.mlp.c_fc</c>, <c>h.N.mlp.c_proj</c>, ...) with weights stored [in, out]:
/// <see cref="Checkpoint"/> maps each family's names onto them, so <c>h.N.mlp.c_proj</c> is the edit site of every
/// family (Llama's <c>down_proj</c>, NeoX's <c>dense_4h_to_h</c>, GPT-J's <c>fc_out</c>) and its input is ROME's key.
/// Every forward pass takes its hooks and edits as an <see cref="Interventions"/> argument (see <see cref="HookPoint"/>).
/// </summary>
public sealed class DecoderModel : nn.Module
{
    public ModelConfig Config { get; }

    private readonly Embedding wte;
    private readonly Embedding? wpe;
    private readonly ModuleList<Block> h;
    private readonly nn.Module<Tensor, Tensor> ln_f;
    private readonly LmHead? lm_head;
    private readonly Rotary? _rotary;

    public DecoderModel(ModelConfig config) : base("transformer")
    {
        Config = config;
        wte = nn.Embedding(config.VocabSize, config.Embd);
        if (config.LearnedPositions) wpe = nn.Embedding(config.Positions, config.Embd);
        if (config.RotaryDims > 0) _rotary = new Rotary(config);
        h = nn.ModuleList(Enumerable.Range(0, config.Layers).Select(i => new Block(config, i)).ToArray());
        ln_f = Norm(config);
        if (!config.TiedEmbeddings || config.HeadBias) lm_head = new LmHead(config);
        RegisterComponents();
    }

    /// <summary>The token embedding matrix [vocab, width].</summary>
    public Tensor TokenEmbedding => wte.weight!;

    /// <summary>The unembedding [vocab, width]: the token embedding when tied, else the head's own weight.</summary>
    public Tensor Unembedding => lm_head?.weight ?? wte.weight!;

    /// <summary>
    /// Runs the model (TransformerLens' <c>model(input, start_at_layer, stop_at_layer)</c>). Without
    /// <paramref name="startAtLayer"/>, <paramref name="input"/> is token ids [batch, tokens] (continuing
    /// <paramref name="cache"/>, if given); with it, the residual stream entering that block [batch, tokens, width] at
    /// positions 0... Returns float32 logits [batch, tokens, vocab] ([batch, 1, vocab] with <paramref name="lastOnly"/>),
    /// or with <paramref name="stopAtLayer"/> the residual stream entering that block (<see cref="ModelConfig.Layers"/>:
    /// leaving the last; <see cref="Unembed"/> turns it into logits).
    /// </summary>
    public Tensor Forward(Tensor input, Interventions? iv = null, KvCache? cache = null, bool lastOnly = false, int? startAtLayer = null, int? stopAtLayer = null)
    {
        using var scope = NewDisposeScope();
        iv ??= Interventions.None;
        var (from, to) = (startAtLayer ?? 0, stopAtLayer ?? Config.Layers);
        if (from < 0 || to > Config.Layers || from > to)
            throw new ArgumentOutOfRangeException(nameof(startAtLayer), $"Layers {from}..{to} are not within 0..{Config.Layers}.");
        long past = cache?.Length ?? 0, count = input.shape[1];
        if (past + count > Config.Positions)
            throw new RomeException($"The input is {past + count} tokens long; this model reads at most {Config.Positions}.");

        var x = startAtLayer is null ? iv.Run(HookPoint.Embed, Embed(input, past)) : input;
        var rotation = Rotation(null, past, x);
        for (int layer = from; layer < to; layer++)
            x = h[layer].Forward(x, iv, cache, rotation);
        if (cache is { ReadOnly: false }) cache.Length += count;
        return (stopAtLayer is null ? Unembed(lastOnly ? x[.., ^1.., ..] : x) : x).MoveToOuterDisposeScope();
    }

    /// <summary>Token embeddings, plus learned position embeddings where the family has them (GPT-2).</summary>
    private Tensor Embed(Tensor ids, long past)
    {
        var x = wte.forward(ids);
        if (wpe is null) return x;
        using var positions = arange(past, past + ids.shape[1], dtype: int64, device: ids.device);
        return x + wpe.forward(positions);
    }

    /// <summary>
    /// Runs the model on <paramref name="ids"/> only as far as <paramref name="points"/> need, and returns their
    /// activations (TransformerLens' <c>run_with_cache</c>), with <paramref name="iv"/>'s hooks and edits applied; they
    /// belong to the caller's dispose scope (or to the cache, which disposes them).
    /// </summary>
    public ActivationCache RunWithCache(Tensor ids, IEnumerable<HookPoint> points, Interventions? iv = null)
    {
        var cache = new ActivationCache();
        var wanted = points.ToList();
        var stop = wanted.Max(p => p == HookPoint.Embed ? 0 : p.Layer + 1);
        using (Forward(ids, Capturing(wanted, iv, cache), stopAtLayer: stop)) { }
        return cache;
    }

    /// <summary>
    /// TransformerLens' <c>logits, cache = model.run_with_cache(ids)</c>: the whole forward pass (continuing and
    /// extending <paramref name="kv"/>, if given) with <paramref name="iv"/>'s hooks and edits, its logits (the last
    /// token's only, with <paramref name="lastOnly"/>) and the activations at <paramref name="points"/>.
    /// </summary>
    public (Tensor Logits, ActivationCache Cache) RunWithLogits(Tensor ids, IEnumerable<HookPoint> points, Interventions? iv = null, KvCache? kv = null, bool lastOnly = false)
    {
        var cache = new ActivationCache();
        return (Forward(ids, Capturing(points, iv, cache), kv, lastOnly), cache);
    }

    /// <summary>A copy of <paramref name="iv"/> (the caller's stays as it was) that also captures <paramref name="points"/> into <paramref name="cache"/>.</summary>
    private static Interventions Capturing(IEnumerable<HookPoint> points, Interventions? iv, ActivationCache cache)
    {
        var capture = iv?.Copy() ?? new Interventions();
        foreach (var point in points) capture.Capture(point, t => cache.Add(point, t));
        return capture;
    }

    /// <summary>
    /// Block <paramref name="layer"/> alone (TransformerLens' <c>blocks[L]</c>) on <paramref name="x"/>, the residual
    /// stream entering it ([batch, tokens, width]), its tokens laid out as <paramref name="packed"/> says (by default,
    /// a prompt's first tokens).
    /// </summary>
    public Tensor ForwardBlock(int layer, Tensor x, Interventions? iv = null, PackedRuns? packed = null)
    {
        if (packed?.Prefix is { ReadOnly: false }) throw new ArgumentException("A single block reads a cache, it cannot extend one: pass a KvCache.Prefix.", nameof(packed));
        return h[layer].Forward(x, iv ?? Interventions.None, packed?.Prefix, Rotation(packed?.Positions, packed?.Prefix?.Length ?? 0, x), packed);
    }

    /// <summary>
    /// Logits of the residual stream leaving the last block: <c>ln_f</c>, then the unembedding. Always float32,
    /// whatever the model's dtype, so probabilities downstream keep their precision.
    /// </summary>
    public Tensor Unembed(Tensor resid) => Head(FinalNorm(resid));

    /// <summary>The final norm <c>ln_f</c> of the residual stream leaving the last block.</summary>
    public Tensor FinalNorm(Tensor resid) => ln_f.forward(resid);

    /// <summary>Logits of a state after <see cref="FinalNorm"/> (float32).</summary>
    public Tensor Head(Tensor finalHidden)
    {
        var logits = finalHidden.matmul(Unembedding.t());
        if (lm_head?.bias is { } bias) logits = logits + bias;
        return logits.to(float32);
    }

    /// <summary>The rotary angles of <paramref name="x"/>'s tokens: at <paramref name="positions"/>, else from <paramref name="from"/> on.</summary>
    private Rotation? Rotation(Tensor? positions, long from, Tensor x)
    {
        if (_rotary is null) return null;
        using var defaults = positions is null ? arange(from, from + x.shape[1], dtype: int64, device: x.device) : null;
        return _rotary.At(positions ?? defaults!, x.dtype);
    }

    /// <summary>
    /// Whether block <paramref name="layer"/> has an MLP: a model trained with MLP-free first blocks keeps their weights
    /// at zero, so their keys are zero and no editor has anything to rewrite.
    /// </summary>
    public bool HasMlp(int layer)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        return Linear($"h.{layer}.mlp.c_fc").Weight.ne(0).any().item<bool>();
    }

    /// <summary>The linear layer with the given (GPT-2) name, e.g. <c>h.3.mlp.c_proj</c>.</summary>
    public Conv1D Linear(string module)
    {
        var parts = module.Split('.');
        if (parts.Length == 4 && parts[0] == "h" && int.TryParse(parts[1], out var layer) && layer >= 0 && layer < Config.Layers)
        {
            var block = h[layer];
            var found = (parts[2], parts[3]) switch
            {
                ("attn", "c_attn") => block.attn.c_attn,
                ("attn", "c_proj") => block.attn.c_proj,
                ("mlp", "c_fc") => block.mlp.c_fc,
                ("mlp", "c_proj") => block.mlp.c_proj,
                _ => null,
            };
            if (found is not null) return found;
        }
        throw new RomeException($"No linear layer named '{module}' (layers are 0..{Config.Layers - 1}).");
    }

    private static nn.Module<Tensor, Tensor> Norm(ModelConfig c) =>
        c.RmsNorm ? new RmsNorm(c.Embd, c.NormEpsilon) : nn.LayerNorm(c.Embd, c.NormEpsilon);

    /// <summary>x + attn(ln_1(x)) + mlp(ln_2(...)): sequential (GPT-2, Llama), or both reading x (parallel: GPT-J, NeoX).</summary>
    private sealed class Block : nn.Module
    {
        internal readonly nn.Module<Tensor, Tensor> ln_1;
        internal readonly nn.Module<Tensor, Tensor>? ln_2;
        internal readonly Attention attn;
        internal readonly Mlp mlp;
        private readonly int _layer;
        private readonly bool _parallel;

        public Block(ModelConfig c, int layer) : base($"h.{layer}")
        {
            (_layer, _parallel) = (layer, c.Residual != Residual.Sequential);
            ln_1 = Norm(c);
            attn = new Attention(c, layer);
            if (c.Residual != Residual.ParallelSharedNorm) ln_2 = Norm(c);
            mlp = new Mlp(c, layer);
            RegisterComponents();
        }

        public Tensor Forward(Tensor x, Interventions iv, KvCache? cache, Rotation? rotation, PackedRuns? packed = null)
        {
            var normed = ln_1.forward(x);
            var a = iv.Run(HookPoint.Attn(_layer), attn.Forward(normed, iv, cache, rotation, packed));
            if (packed?.Outputs is { } outputs) (x, normed) = (x.index_select(1, outputs), normed.index_select(1, outputs));
            var mlpIn = !_parallel ? ln_2!.forward(x + a) : ln_2 is null ? normed : ln_2.forward(x);
            var m = iv.Run(HookPoint.Mlp(_layer), mlp.Forward(mlpIn, iv));
            return iv.Run(HookPoint.Resid(_layer), x + a + m);
        }
    }

    /// <summary>Causal self-attention with grouped key-value heads and, in a local layer, a window.</summary>
    private sealed class Attention : nn.Module
    {
        internal readonly Conv1D c_attn, c_proj;
        private readonly int _layer, _heads, _kvHeads, _headDim, _window;

        public Attention(ModelConfig c, int layer) : base("attn")
        {
            _layer = layer;
            _window = c.AttentionWindow(layer);
            (_heads, _kvHeads, _headDim) = (c.Heads, c.KvHeads, c.HeadDim);
            c_attn = new Conv1D($"h.{layer}.attn.c_attn", c.Embd, (c.Heads + 2 * c.KvHeads) * c.HeadDim, c.QkvBias);
            c_proj = new Conv1D($"h.{layer}.attn.c_proj", c.Heads * c.HeadDim, c.Embd, c.AttnOutBias);
            RegisterComponents();
        }

        /// <summary>
        /// Token i sees the cached tokens and the new ones up to itself (or what <paramref name="packed"/>'s mask says),
        /// and in a local layer only keys fewer than <see cref="ModelConfig.AttentionWindows"/> positions back.
        /// </summary>
        public Tensor Forward(Tensor x, Interventions iv, KvCache? cache, Rotation? rotation, PackedRuns? packed)
        {
            long batch = x.shape[0], count = x.shape[1];
            var qkv = c_attn.Forward(x, iv).split([_heads * _headDim, _kvHeads * _headDim, _kvHeads * _headDim], dim: 2);
            Tensor Heads(Tensor t, int heads) => t.view(batch, count, heads, _headDim).transpose(1, 2);
            Tensor q = Heads(qkv[0], _heads), k = Heads(qkv[1], _kvHeads), v = Heads(qkv[2], _kvHeads);
            if (rotation is not null) (q, k) = (rotation.Apply(q), rotation.Apply(k));

            long past = cache?.Length ?? 0;
            if (cache is not null) (k, v) = cache.Append(_layer, k, v);
            if (_kvHeads != _heads) (k, v) = (k.repeat_interleave(_heads / _kvHeads, dim: 1), v.repeat_interleave(_heads / _kvHeads, dim: 1));

            Tensor y;
            if (packed is null && _window == 0 && (past == 0 || count == 1))
                y = F.scaled_dot_product_attention(q, k, v, is_casual: past == 0 && count > 1);
            else
            {
                var sees = packed?.Mask ?? ones(count, past + count, dtype: @bool, device: x.device).tril(past);
                if (_window > 0) sees = sees.logical_and(Near(packed?.Positions ?? arange(past, past + count, dtype: int64, device: x.device), past));
                if (packed?.Outputs is { } outputs) (q, sees, count) = (q.index_select(2, outputs), sees.index_select(0, outputs), outputs.shape[0]);
                y = F.scaled_dot_product_attention(q, k, v, attn_mask: sees);
            }
            return c_proj.Forward(y.transpose(1, 2).reshape(batch, count, _heads * _headDim), iv);
        }

        /// <summary>Which keys lie within the window of each query ([queries, cached + queries]).</summary>
        private Tensor Near(Tensor queryPositions, long cached)
        {
            var keyPositions = cat([arange(0, cached, dtype: int64, device: queryPositions.device), queryPositions]);
            return (queryPositions.unsqueeze(1) - keyPositions.unsqueeze(0)).lt(_window);
        }
    }

    /// <summary>c_proj(act(c_fc(x))), or for a gated MLP c_proj(act(gate) · up). The input of c_proj is ROME's key.</summary>
    private sealed class Mlp : nn.Module
    {
        /// <summary>The input projection; for a gated MLP, [gate | up].</summary>
        internal readonly Conv1D c_fc;
        internal readonly Conv1D c_proj;
        private readonly int _layer;
        private readonly string _activation;
        private readonly bool _gated;

        public Mlp(ModelConfig c, int layer) : base("mlp")
        {
            (_layer, _activation, _gated) = (layer, c.Activation, c.GatedMlp);
            c_fc = new Conv1D($"h.{layer}.mlp.c_fc", c.Embd, (c.GatedMlp ? 2 : 1) * c.Inner, c.MlpBias);
            c_proj = new Conv1D($"h.{layer}.mlp.c_proj", c.Inner, c.Embd, c.MlpBias);
            RegisterComponents();
        }

        public Tensor Forward(Tensor x, Interventions iv)
        {
            var hidden = c_fc.Forward(x, iv);
            Tensor key;
            if (_gated)
            {
                var gateUp = hidden.chunk(2, dim: -1);
                key = Activate(gateUp[0]) * gateUp[1];
            }
            else key = Activate(hidden);
            return c_proj.Forward(iv.Run(HookPoint.MlpKey(_layer), key), iv);
        }

        private Tensor Activate(Tensor x) => _activation switch
        {
            "gelu_new" => F.gelu(x, GELU.Approximate.tanh),
            "gelu" => F.gelu(x),
            "relu" => F.relu(x),
            _ => F.silu(x),
        };
    }
}
