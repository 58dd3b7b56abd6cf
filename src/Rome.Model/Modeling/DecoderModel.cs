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
        var resid = Stream(input, iv ?? Interventions.None, cache, startAtLayer, stopAtLayer ?? Config.Layers);
        return (stopAtLayer is null ? Unembed(lastOnly ? resid[.., ^1.., ..] : resid) : resid).MoveToOuterDisposeScope();
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
    /// stream entering it ([batch, tokens, width]). Tokens may also attend to a read-only <see cref="KvCache.Prefix"/>.
    /// <paramref name="mask"/> ([tokens, prefix + tokens], bool) says which keys each token sees; by default the whole
    /// prefix and the tokens up to itself. <paramref name="outputs"/> (token indices) limits the output to those
    /// tokens ([batch, outputs, width]); every token still serves as a key and value. <paramref name="positions"/>
    /// ([tokens], int64) are the tokens' positions in the prompt, which rotary embeddings need (by default they follow
    /// the prefix).
    /// </summary>
    public Tensor ForwardBlock(int layer, Tensor x, Interventions? iv = null, KvCache? prefix = null, Tensor? mask = null, Tensor? outputs = null, Tensor? positions = null)
    {
        if (prefix is { ReadOnly: false }) throw new ArgumentException("A single block reads a cache, it cannot extend one: pass a KvCache.Prefix.", nameof(prefix));
        var rotation = Rotation(positions, prefix?.Length ?? 0, x);
        return h[layer].Forward(x, iv ?? Interventions.None, prefix, rotation, mask, outputs, positions);
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

    /// <summary>The residual stream from the ids (<paramref name="startAtLayer"/> null) or from the stream entering a block, to the stream entering <paramref name="toLayer"/>.</summary>
    private Tensor Stream(Tensor input, Interventions iv, KvCache? cache, int? startAtLayer, int toLayer)
    {
        var fromLayer = startAtLayer ?? 0;
        if (fromLayer < 0 || toLayer > Config.Layers || fromLayer > toLayer)
            throw new ArgumentOutOfRangeException(nameof(startAtLayer), $"Layers {fromLayer}..{toLayer} are not within 0..{Config.Layers}.");
        long past = cache?.Length ?? 0, count = input.shape[1];
        if (past + count > Config.Positions)
            throw new RomeException($"The input is {past + count} tokens long; this model reads at most {Config.Positions}.");
        var x = input;
        if (startAtLayer is null)
        {
            x = wte.forward(input);
            if (wpe is not null)
            {
                using var positions = arange(past, past + count, dtype: int64, device: input.device);
                x = x + wpe.forward(positions);
            }
            x = iv.Run(HookPoint.Embed, x);
        }

        var rotation = Rotation(null, past, x);
        for (int layer = fromLayer; layer < toLayer; layer++)
            x = h[layer].Forward(x, iv, cache, rotation);
        if (cache is { ReadOnly: false }) cache.Length += count;
        return x;
    }

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

    /// <summary>
    /// Whether block <paramref name="layer"/> has an MLP: a model trained with MLP-free first blocks (<c>rome train
    /// --mlp-free-layers</c>) keeps their weights at zero, so their keys are zero and no editor has anything to rewrite.
    /// </summary>
    public bool HasMlp(int layer)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        return Linear($"h.{layer}.mlp.c_fc").Weight.ne(0).any().item<bool>();
    }

    /// <summary>A clear error unless block <paramref name="layer"/> exists and has an MLP for <paramref name="editor"/> to change.</summary>
    public void EnsureHasMlp(int layer, string editor)
    {
        if (layer < 0 || layer >= Config.Layers) throw new RomeException($"Layer {layer} is out of range (0..{Config.Layers - 1}).");
        if (!HasMlp(layer))
            throw new RomeException($"Layer {layer} has no MLP (its weights are all zero), so {editor} has nothing to rewrite there; edit a layer with an MLP.");
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

    /// <summary>The unembedding's own weight (an untied head) and bias (GPT-J).</summary>
    public sealed class LmHead : nn.Module
    {
        internal readonly Parameter? weight, bias;

        public LmHead(ModelConfig c) : base("lm_head")
        {
            if (!c.TiedEmbeddings) weight = nn.Parameter(empty(c.VocabSize, c.Embd));
            if (c.HeadBias) bias = nn.Parameter(zeros(c.VocabSize));
            RegisterComponents();
        }
    }

    private static nn.Module<Tensor, Tensor> Norm(ModelConfig c) =>
        c.RmsNorm ? new RmsNorm(c.Embd, c.NormEpsilon) : nn.LayerNorm(c.Embd, c.NormEpsilon);

    public sealed class Block : nn.Module
    {
        internal readonly nn.Module<Tensor, Tensor> ln_1;
        internal readonly nn.Module<Tensor, Tensor>? ln_2;
        internal readonly Attention attn;
        internal readonly Mlp mlp;
        private readonly int _layer;
        private readonly Residual _residual;

        public Block(ModelConfig c, int layer) : base($"h.{layer}")
        {
            _layer = layer;
            _residual = c.Residual;
            ln_1 = Norm(c);
            attn = new Attention(c, layer);
            if (c.Residual != Modeling.Residual.ParallelSharedNorm) ln_2 = Norm(c);
            mlp = new Mlp(c, layer);
            RegisterComponents();
        }

        public Tensor Forward(Tensor x, Interventions iv, KvCache? cache, Rotation? rotation, Tensor? mask = null, Tensor? outputs = null, Tensor? positions = null)
        {
            var normed = ln_1.forward(x);
            var a = iv.Run(HookPoint.Attn(_layer), attn.Forward(normed, iv, cache, rotation, mask, outputs, positions));
            if (outputs is not null) (x, normed) = (x.index_select(1, outputs), normed.index_select(1, outputs));
            if (_residual == Modeling.Residual.Sequential)
            {
                x = x + a;
                var m = iv.Run(HookPoint.Mlp(_layer), mlp.Forward(ln_2!.forward(x), iv));
                return iv.Run(HookPoint.Resid(_layer), x + m);
            }
            // Parallel: attention and MLP both read the stream entering the block.
            var mlpIn = ln_2 is null ? normed : ln_2.forward(x);
            var parallel = iv.Run(HookPoint.Mlp(_layer), mlp.Forward(mlpIn, iv));
            return iv.Run(HookPoint.Resid(_layer), x + a + parallel);
        }
    }

    public sealed class Attention : nn.Module
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
        /// Causal self-attention, or as <paramref name="mask"/> says; for the <paramref name="outputs"/> tokens only, if
        /// given. A local layer also hides keys <see cref="ModelConfig.AttentionWindows"/> or more positions back; the
        /// tokens are at <paramref name="positions"/> (by default they follow the cache), the cached keys at 0, 1, ...
        /// </summary>
        public Tensor Forward(Tensor x, Interventions iv, KvCache? cache, Rotation? rotation, Tensor? mask = null, Tensor? outputs = null, Tensor? positions = null)
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
            if (mask is null && outputs is null && _window == 0 && (past == 0 || count == 1))
                y = F.scaled_dot_product_attention(q, k, v, is_casual: past == 0 && count > 1);
            else
            {
                // By default token i sees every cached token and the new tokens up to i.
                var sees = mask ?? ones(count, past + count, dtype: @bool, device: x.device).tril(past);
                if (_window > 0) sees = sees.logical_and(Near(positions ?? arange(past, past + count, dtype: int64, device: x.device), past));
                if (outputs is not null) (q, sees, count) = (q.index_select(2, outputs), sees.index_select(0, outputs), outputs.shape[0]);
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

    public sealed class Mlp : nn.Module
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

/// <summary>
/// Rotary position embeddings: each pair of a head's first <see cref="ModelConfig.RotaryDims"/> dimensions is turned
/// by an angle proportional to the token's position. Pairs are halves (dimension i with i + d/2, NeoX and Llama's
/// rotate_half) or neighbours (2i with 2i + 1, GPT-J's rotate_every_two).
/// </summary>
public sealed class Rotary
{
    private readonly int _dims;
    private readonly bool _interleaved;
    private readonly double _base, _scale;

    public Rotary(ModelConfig c) => (_dims, _interleaved, _base, _scale) = (c.RotaryDims, c.RotaryInterleaved, c.RotaryBase, c.RotaryScale);

    /// <summary>The cosines and sines of the tokens' <paramref name="positions"/> ([tokens]), computed once per forward pass for every layer.</summary>
    public Rotation At(Tensor positions, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var inverse = (arange(0, _dims, 2, dtype: float64, device: positions.device) * (-Math.Log(_base) / _dims)).exp(); // base^(-2i/d)
        var angles = (positions.to(float64) / _scale).unsqueeze(1) * inverse.unsqueeze(0); // [tokens, dims / 2]
        angles = _interleaved ? angles.repeat_interleave(2, dim: 1) : cat([angles, angles], 1);
        return new Rotation(angles.cos().to(dtype).MoveToOuterDisposeScope(), angles.sin().to(dtype).MoveToOuterDisposeScope(), _dims, _interleaved);
    }
}

/// <summary>Rotary angles for some tokens ([tokens, dims]), ready to turn queries and keys.</summary>
public sealed record Rotation(Tensor Cos, Tensor Sin, int Dims, bool Interleaved)
{
    /// <summary>Turns <paramref name="x"/> ([batch, heads, tokens, head size]).</summary>
    public Tensor Apply(Tensor x)
    {
        var (turned, rest) = (x[.., .., .., ..Dims], x[.., .., .., Dims..]);
        var result = turned * Cos + Partner(turned) * Sin;
        return rest.shape[^1] == 0 ? result : cat([result, rest], -1);
    }

    /// <summary>Each dimension's partner in its pair, with the sign the rotation needs: (-x₂, x₁).</summary>
    private Tensor Partner(Tensor x)
    {
        if (Interleaved)
            return stack([-x.slice(-1, 1, Dims, 2), x.slice(-1, 0, Dims, 2)], -1).flatten(-2);
        var halves = x.chunk(2, dim: -1);
        return cat([-halves[1], halves[0]], -1);
    }
}

/// <summary>Root-mean-square norm (Llama, Qwen2): x / rms(x) · weight, computed in float32.</summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly double _epsilon;

    public RmsNorm(int width, double epsilon) : base("RmsNorm")
    {
        weight = nn.Parameter(ones(width));
        _epsilon = epsilon;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var x32 = x.to(float32);
        var normed = x32 * (x32.pow(2).mean([-1], keepdim: true) + _epsilon).rsqrt();
        return (weight * normed.to(x.dtype)).MoveToOuterDisposeScope();
    }
}

/// <summary>A linear layer whose weight is stored [in, out] (GPT-2's "Conv1D"), so y = x W + b; the bias is optional.</summary>
public sealed class Conv1D : nn.Module
{
    /// <summary>The layer's GPT-2 name, e.g. <c>h.3.mlp.c_proj</c>; overlays target it.</summary>
    public string Path { get; }

    private readonly Parameter weight;
    private readonly Parameter? bias;

    public Conv1D(string path, int input, int output, bool hasBias = true) : base(path.Split('.')[^1])
    {
        Path = path;
        weight = nn.Parameter(empty(input, output));
        if (hasBias) bias = nn.Parameter(zeros(output));
        RegisterComponents();
    }

    public Tensor Weight => weight;
    public Tensor? Bias => bias;

    public Tensor Forward(Tensor x, Interventions iv)
    {
        var y = x.matmul(weight);
        if (bias is not null) y = y.add_(bias);
        foreach (var overlay in iv.Overlays)
            if (overlay.Module == Path) y = overlay.Apply(x, y);
        return y;
    }
}

/// <summary>Activations by hook point, from <see cref="DecoderModel.RunWithCache"/>.</summary>
public sealed class ActivationCache : IDisposable
{
    private readonly Dictionary<HookPoint, Tensor> _activations = new();

    public Tensor this[HookPoint point] => _activations.TryGetValue(point, out var t) ? t
        : throw new KeyNotFoundException($"{point} was not cached.");

    internal void Add(HookPoint point, Tensor activation) => _activations[point] = activation;

    /// <summary>Every cached activation.</summary>
    public IEnumerable<Tensor> Values => _activations.Values;

    public void Dispose()
    {
        foreach (var t in _activations.Values) t.Dispose();
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
