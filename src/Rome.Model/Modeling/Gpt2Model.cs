using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Rome.Model.Modeling;

/// <summary>
/// GPT-2, written to be read in one sitting (after nanoGPT's model.py). Module and parameter names
/// mirror Hugging Face's (<c>wte</c>, <c>wpe</c>, <c>h.N.ln_1</c>, <c>h.N.attn.c_attn</c>, ...), so a
/// state dict maps one to one onto a Hugging Face checkpoint. Every forward pass takes its hooks and
/// edits as an <see cref="Interventions"/> argument (see <see cref="HookPoint"/>).
/// </summary>
public sealed class Gpt2Model : nn.Module
{
    public Gpt2Config Config { get; }

    private readonly Embedding wte, wpe;
    private readonly ModuleList<Block> h;
    private readonly LayerNorm ln_f;

    public Gpt2Model(Gpt2Config config) : base("transformer")
    {
        Config = config;
        wte = nn.Embedding(config.VocabSize, config.Embd);
        wpe = nn.Embedding(config.Positions, config.Embd);
        h = nn.ModuleList(Enumerable.Range(0, config.Layers).Select(i => new Block(config, i)).ToArray());
        ln_f = nn.LayerNorm(config.Embd, config.LayerNormEpsilon);
        RegisterComponents();
    }

    /// <summary>The token embedding matrix [vocab, width], also the (tied) unembedding.</summary>
    public Tensor TokenEmbedding => wte.weight!;

    /// <summary>Runs the model and returns float32 logits [batch, tokens, vocab] (or [batch, 1, vocab] with
    /// <paramref name="lastOnly"/>). With a <paramref name="cache"/>, <paramref name="ids"/> continue it.</summary>
    public Tensor Forward(Tensor ids, Interventions? iv = null, KvCache? cache = null, bool lastOnly = false)
    {
        using var scope = NewDisposeScope();
        var resid = Residual(ids, iv ?? Interventions.None, cache, fromLayer: 0, input: null);
        return Logits(resid, lastOnly).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Runs blocks <paramref name="fromLayer"/>.. on <paramref name="input"/>, the residual stream entering
    /// that block ([batch, tokens, width]), and returns logits. Lets callers reuse a shared lower part.
    /// </summary>
    public Tensor ForwardFrom(int fromLayer, Tensor input, Interventions? iv = null, bool lastOnly = false)
    {
        using var scope = NewDisposeScope();
        var resid = Residual(null, iv ?? Interventions.None, null, fromLayer, input);
        return Logits(resid, lastOnly).MoveToOuterDisposeScope();
    }

    /// <summary>The final hidden state after <c>ln_f</c> ([batch, tokens, width]): logits are this times <see cref="TokenEmbedding"/>ᵀ.</summary>
    public Tensor FinalHidden(Tensor ids, Interventions? iv = null)
    {
        using var scope = NewDisposeScope();
        return ln_f.forward(Residual(ids, iv ?? Interventions.None, null, 0, null)).MoveToOuterDisposeScope();
    }

    /// <summary><see cref="FinalHidden"/> from the residual stream entering block <paramref name="fromLayer"/>.</summary>
    public Tensor FinalHiddenFrom(int fromLayer, Tensor input, Interventions? iv = null)
    {
        using var scope = NewDisposeScope();
        return ln_f.forward(Residual(null, iv ?? Interventions.None, null, fromLayer, input)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Block <paramref name="layer"/> alone (TransformerLens' <c>blocks[L]</c>) on <paramref name="x"/>, the residual
    /// stream entering it ([batch, tokens, width]). Tokens may also attend to a read-only <see cref="KvCache.Prefix"/>.
    /// <paramref name="mask"/> ([tokens, prefix + tokens], bool) says which keys each token sees; by default the whole
    /// prefix and the tokens up to itself. <paramref name="outputs"/> (token indices) limits the output to those
    /// tokens ([batch, outputs, width]); every token still serves as a key and value.
    /// </summary>
    public Tensor ForwardBlock(int layer, Tensor x, Interventions? iv = null, KvCache? prefix = null, Tensor? mask = null, Tensor? outputs = null)
    {
        if (prefix is { ReadOnly: false }) throw new ArgumentException("A single block reads a cache, it cannot extend one: pass a KvCache.Prefix.", nameof(prefix));
        return h[layer].Forward(x, iv ?? Interventions.None, prefix, mask, outputs);
    }

    /// <summary>Logits of the residual stream leaving the last block: <c>ln_f</c>, then <see cref="Head"/>.</summary>
    public Tensor Unembed(Tensor resid) => Head(ln_f.forward(resid));

    /// <summary>
    /// Logits of a <see cref="FinalHidden"/> state (after <c>ln_f</c>): the tied unembedding. Always float32, whatever
    /// the model's dtype, so probabilities downstream keep their precision.
    /// </summary>
    public Tensor Head(Tensor finalHidden) => finalHidden.matmul(wte.weight!.t()).to(float32);

    private Tensor Residual(Tensor? ids, Interventions iv, KvCache? cache, int fromLayer, Tensor? input)
    {
        Tensor x;
        if (input is null)
        {
            long past = cache?.Length ?? 0, count = ids!.shape[1];
            if (past + count > Config.Positions)
                throw new RomeException($"The input is {past + count} tokens long; this model reads at most {Config.Positions}.");
            using var positions = arange(past, past + count, dtype: int64, device: ids.device);
            x = iv.Run(HookPoint.Embed, wte.forward(ids) + wpe.forward(positions));
        }
        else x = input;

        for (int layer = fromLayer; layer < Config.Layers; layer++)
            x = h[layer].Forward(x, iv, cache);
        if (cache is { ReadOnly: false }) cache.Length += ids!.shape[1];
        return x;
    }

    private Tensor Logits(Tensor resid, bool lastOnly) => Unembed(lastOnly ? resid[.., ^1.., ..] : resid);

    /// <summary>GPT-2's initialisation: N(0, 0.02), residual projections scaled by 1/√(2·layers).</summary>
    public void InitializeWeights(int seed)
    {
        using var noGrad = no_grad();
        using var generator = new TorchSharp.torch.Generator((ulong)seed);
        foreach (var (name, p) in named_parameters())
        {
            if (name.EndsWith(".bias")) p.zero_();
            else if (name.Contains("ln_")) p.fill_(1.0);
            else
            {
                var std = name.EndsWith("c_proj.weight") ? 0.02 / Math.Sqrt(2.0 * Config.Layers) : 0.02;
                p.normal_(0, std, generator);
            }
        }
    }

    /// <summary>The linear layer with the given Hugging Face name, e.g. <c>h.3.mlp.c_proj</c>.</summary>
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

    public sealed class Block : nn.Module
    {
        internal readonly LayerNorm ln_1, ln_2;
        internal readonly Attention attn;
        internal readonly Mlp mlp;
        private readonly int _layer;

        public Block(Gpt2Config c, int layer) : base($"h.{layer}")
        {
            _layer = layer;
            ln_1 = nn.LayerNorm(c.Embd, c.LayerNormEpsilon);
            attn = new Attention(c, layer);
            ln_2 = nn.LayerNorm(c.Embd, c.LayerNormEpsilon);
            mlp = new Mlp(c, layer);
            RegisterComponents();
        }

        public Tensor Forward(Tensor x, Interventions iv, KvCache? cache, Tensor? mask = null, Tensor? outputs = null)
        {
            var a = iv.Run(HookPoint.Attn(_layer), attn.Forward(ln_1.forward(x), iv, cache, mask, outputs));
            if (outputs is not null) x = x.index_select(1, outputs);
            x = x + a;
            var m = iv.Run(HookPoint.Mlp(_layer), mlp.Forward(ln_2.forward(x), iv));
            return iv.Run(HookPoint.Resid(_layer), x + m);
        }
    }

    public sealed class Attention : nn.Module
    {
        internal readonly Conv1D c_attn, c_proj;
        private readonly int _layer, _heads;

        public Attention(Gpt2Config c, int layer) : base("attn")
        {
            _layer = layer;
            _heads = c.Heads;
            c_attn = new Conv1D($"h.{layer}.attn.c_attn", c.Embd, 3 * c.Embd);
            c_proj = new Conv1D($"h.{layer}.attn.c_proj", c.Embd, c.Embd);
            RegisterComponents();
        }

        /// <summary>Causal self-attention, or as <paramref name="mask"/> says; for the <paramref name="outputs"/> tokens only, if given.</summary>
        public Tensor Forward(Tensor x, Interventions iv, KvCache? cache, Tensor? mask = null, Tensor? outputs = null)
        {
            long batch = x.shape[0], count = x.shape[1], width = x.shape[2];
            var qkv = c_attn.Forward(x, iv).split(width, dim: 2);
            Tensor Heads(Tensor t) => t.view(batch, count, _heads, width / _heads).transpose(1, 2);
            Tensor q = Heads(qkv[0]), k = Heads(qkv[1]), v = Heads(qkv[2]);

            long past = cache?.Length ?? 0;
            if (cache is not null) (k, v) = cache.Append(_layer, k, v);

            Tensor y;
            if (mask is null && outputs is null && (past == 0 || count == 1))
                y = F.scaled_dot_product_attention(q, k, v, is_casual: past == 0 && count > 1);
            else
            {
                // By default token i sees every cached token and the new tokens up to i.
                var sees = mask ?? ones(count, past + count, dtype: @bool, device: x.device).tril(past);
                if (outputs is not null) (q, sees, count) = (q.index_select(2, outputs), sees.index_select(0, outputs), outputs.shape[0]);
                y = F.scaled_dot_product_attention(q, k, v, attn_mask: sees);
            }
            return c_proj.Forward(y.transpose(1, 2).reshape(batch, count, width), iv);
        }
    }

    public sealed class Mlp : nn.Module
    {
        internal readonly Conv1D c_fc, c_proj;
        private readonly int _layer;

        public Mlp(Gpt2Config c, int layer) : base("mlp")
        {
            _layer = layer;
            c_fc = new Conv1D($"h.{layer}.mlp.c_fc", c.Embd, c.Inner);
            c_proj = new Conv1D($"h.{layer}.mlp.c_proj", c.Inner, c.Embd);
            RegisterComponents();
        }

        public Tensor Forward(Tensor x, Interventions iv)
        {
            var key = iv.Run(HookPoint.MlpKey(_layer), F.gelu(c_fc.Forward(x, iv), TorchSharp.Modules.GELU.Approximate.tanh));
            return c_proj.Forward(key, iv);
        }
    }
}

/// <summary>GPT-2's "Conv1D": a linear layer whose weight is stored [in, out], so y = x W + b.</summary>
public sealed class Conv1D : nn.Module
{
    /// <summary>The Hugging Face name of this layer, e.g. <c>h.3.mlp.c_proj</c>; overlays target it.</summary>
    public string Path { get; }

    private readonly Parameter weight, bias;

    public Conv1D(string path, int input, int output) : base(path.Split('.')[^1])
    {
        Path = path;
        weight = nn.Parameter(empty(input, output));
        bias = nn.Parameter(zeros(output));
        RegisterComponents();
    }

    public Tensor Weight => weight;
    public Tensor Bias => bias;

    public Tensor Forward(Tensor x, Interventions iv)
    {
        var y = x.matmul(weight).add_(bias);
        foreach (var overlay in iv.Overlays)
            if (overlay.Module == Path) y = overlay.Apply(x, y);
        return y;
    }
}

/// <summary>Keys and values of earlier tokens, per layer, so generation feeds one new token at a time.</summary>
public sealed class KvCache(int layers) : IDisposable
{
    private readonly Tensor?[] _keys = new Tensor?[layers], _values = new Tensor?[layers];

    /// <summary>How many tokens the cache holds.</summary>
    public long Length { get; internal set; }

    /// <summary>A <see cref="Prefix"/>: forward passes attend to it but do not extend it.</summary>
    public bool ReadOnly { get; private init; }

    /// <summary>
    /// A read-only view of this cache's first <paramref name="length"/> tokens, so many forward passes can share
    /// them. A batch larger than the cache's repeats its rows: batch row r sees cache row r mod (cache rows).
    /// </summary>
    public KvCache Prefix(int length)
    {
        if (length < 1 || length > Length) throw new ArgumentOutOfRangeException(nameof(length));
        var view = new KvCache(_keys.Length) { Length = length, ReadOnly = true };
        for (int l = 0; l < _keys.Length; l++)
        {
            view._keys[l] = _keys[l]![.., .., ..length];
            view._values[l] = _values[l]![.., .., ..length];
        }
        return view;
    }

    internal (Tensor Keys, Tensor Values) Append(int layer, Tensor k, Tensor v)
    {
        if (ReadOnly)
        {
            Tensor Rows(Tensor past) => past.shape[0] == k.shape[0] ? past : past.repeat(k.shape[0] / past.shape[0], 1, 1, 1);
            return (cat([Rows(_keys[layer]!), k], 2), cat([Rows(_values[layer]!), v], 2));
        }
        var (oldK, oldV) = (_keys[layer], _values[layer]);
        var newK = oldK is null ? k.detach().clone() : cat([oldK, k.detach()], 2);
        var newV = oldV is null ? v.detach().clone() : cat([oldV, v.detach()], 2);
        _keys[layer] = newK.DetachFromDisposeScope();
        _values[layer] = newV.DetachFromDisposeScope();
        oldK?.Dispose();
        oldV?.Dispose();
        return (_keys[layer]!, _values[layer]!);
    }

    public void Dispose()
    {
        foreach (var t in _keys.Concat(_values)) t?.Dispose();
    }
}
