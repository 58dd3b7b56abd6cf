using static TorchSharp.torch;

namespace Rome.Model.Modeling;

/// <summary>A tensor a checkpoint must hold, with the shape the config implies.</summary>
public sealed record WeightSource(string Name, long[] Shape);

/// <summary>One parameter of <see cref="DecoderModel"/> (<paramref name="Target"/>), built from checkpoint tensors.</summary>
public sealed record WeightMapping(string Target, WeightSource[] Sources, Func<Tensor[], Tensor> Build);

/// <summary>
/// Where each family's Hugging Face checkpoint keeps the weights of <see cref="DecoderModel"/>, whose modules carry
/// GPT-2's names and store linear weights [in, out]. Hugging Face's <c>nn.Linear</c> stores [out, in], so those are
/// transposed; separate q, k, v (and Llama's gate, up) are concatenated; NeoX's fused q/k/v, laid out per head as
/// [heads, 3, head size], is regrouped into [q | k | v].
/// </summary>
public static class HuggingFaceLayout
{
    public static IEnumerable<WeightMapping> Mappings(ModelConfig c) => c.Family switch
    {
        ModelFamily.Gpt2 => Gpt2(c),
        ModelFamily.GptJ => GptJ(c),
        ModelFamily.GptNeoX => GptNeoX(c),
        _ => Llama(c),
    };

    /// <summary>Keys that old checkpoints carry but are not weights (causal masks, rotary frequencies).</summary>
    public static bool IsBuffer(string key) =>
        key.EndsWith(".attn.bias") || key.EndsWith(".attn.masked_bias") || key.EndsWith("rotary_emb.inv_freq")
        || key.EndsWith(".attention.bias") || key.EndsWith(".attention.masked_bias");

    private static IEnumerable<WeightMapping> Gpt2(ModelConfig c)
    {
        // GPT-2 is stored as this model is ([in, out] "Conv1D" weights), with or without a "transformer." prefix.
        long e = c.Embd, inner = c.Inner;
        yield return Same("wte.weight", c.VocabSize, e);
        yield return Same("wpe.weight", c.Positions, e);
        for (int l = 0; l < c.Layers; l++)
        {
            foreach (var norm in new[] { "ln_1", "ln_2" })
            {
                yield return Same($"h.{l}.{norm}.weight", e);
                yield return Same($"h.{l}.{norm}.bias", e);
            }
            yield return Same($"h.{l}.attn.c_attn.weight", e, 3 * e);
            yield return Same($"h.{l}.attn.c_attn.bias", 3 * e);
            yield return Same($"h.{l}.attn.c_proj.weight", e, e);
            yield return Same($"h.{l}.attn.c_proj.bias", e);
            yield return Same($"h.{l}.mlp.c_fc.weight", e, inner);
            yield return Same($"h.{l}.mlp.c_fc.bias", inner);
            yield return Same($"h.{l}.mlp.c_proj.weight", inner, e);
            yield return Same($"h.{l}.mlp.c_proj.bias", e);
        }
        yield return Same("ln_f.weight", e);
        yield return Same("ln_f.bias", e);
    }

    private static IEnumerable<WeightMapping> GptJ(ModelConfig c)
    {
        long e = c.Embd, inner = c.Inner;
        yield return Copy("wte.weight", "transformer.wte.weight", c.VocabSize, e);
        for (int l = 0; l < c.Layers; l++)
        {
            var p = $"transformer.h.{l}.";
            yield return Copy($"h.{l}.ln_1.weight", p + "ln_1.weight", e);
            yield return Copy($"h.{l}.ln_1.bias", p + "ln_1.bias", e);
            foreach (var m in Linear($"h.{l}.attn.c_attn", e, [(p + "attn.q_proj", e), (p + "attn.k_proj", e), (p + "attn.v_proj", e)], bias: false)) yield return m;
            foreach (var m in Linear($"h.{l}.attn.c_proj", e, [(p + "attn.out_proj", e)], bias: false)) yield return m;
            foreach (var m in Linear($"h.{l}.mlp.c_fc", e, [(p + "mlp.fc_in", inner)])) yield return m;
            foreach (var m in Linear($"h.{l}.mlp.c_proj", inner, [(p + "mlp.fc_out", e)])) yield return m;
        }
        yield return Copy("ln_f.weight", "transformer.ln_f.weight", e);
        yield return Copy("ln_f.bias", "transformer.ln_f.bias", e);
        yield return Copy("lm_head.weight", "lm_head.weight", c.VocabSize, e);
        yield return Copy("lm_head.bias", "lm_head.bias", c.VocabSize);
    }

    private static IEnumerable<WeightMapping> GptNeoX(ModelConfig c)
    {
        long e = c.Embd, inner = c.Inner, heads = c.Heads, d = c.HeadDim;
        yield return Copy("wte.weight", "gpt_neox.embed_in.weight", c.VocabSize, e);
        for (int l = 0; l < c.Layers; l++)
        {
            var p = $"gpt_neox.layers.{l}.";
            foreach (var (norm, source) in new[] { ("ln_1", "input_layernorm"), ("ln_2", "post_attention_layernorm") })
            {
                yield return Copy($"h.{l}.{norm}.weight", p + source + ".weight", e);
                yield return Copy($"h.{l}.{norm}.bias", p + source + ".bias", e);
            }
            // [heads, 3, head size] rows → [3, heads, head size]: q, k, v each with its heads in order.
            yield return new($"h.{l}.attn.c_attn.weight", [new(p + "attention.query_key_value.weight", [3 * e, e])],
                t => t[0].view(heads, 3, d, e).transpose(0, 1).reshape(3 * e, e).t());
            if (c.QkvBias)
                yield return new($"h.{l}.attn.c_attn.bias", [new(p + "attention.query_key_value.bias", [3 * e])],
                    t => t[0].view(heads, 3, d).transpose(0, 1).reshape(3 * e));
            foreach (var m in Linear($"h.{l}.attn.c_proj", e, [(p + "attention.dense", e)], c.AttnOutBias)) yield return m;
            foreach (var m in Linear($"h.{l}.mlp.c_fc", e, [(p + "mlp.dense_h_to_4h", inner)])) yield return m;
            foreach (var m in Linear($"h.{l}.mlp.c_proj", inner, [(p + "mlp.dense_4h_to_h", e)])) yield return m;
        }
        yield return Copy("ln_f.weight", "gpt_neox.final_layer_norm.weight", e);
        yield return Copy("ln_f.bias", "gpt_neox.final_layer_norm.bias", e);
        if (!c.TiedEmbeddings) yield return Copy("lm_head.weight", "embed_out.weight", c.VocabSize, e);
    }

    /// <summary>Llama, Mistral and Qwen2 (which adds q, k, v biases).</summary>
    private static IEnumerable<WeightMapping> Llama(ModelConfig c)
    {
        long e = c.Embd, inner = c.Inner, q = c.Heads * c.HeadDim, kv = c.KvHeads * c.HeadDim;
        yield return Copy("wte.weight", "model.embed_tokens.weight", c.VocabSize, e);
        for (int l = 0; l < c.Layers; l++)
        {
            var p = $"model.layers.{l}.";
            yield return Copy($"h.{l}.ln_1.weight", p + "input_layernorm.weight", e);
            yield return Copy($"h.{l}.ln_2.weight", p + "post_attention_layernorm.weight", e);
            foreach (var m in Linear($"h.{l}.attn.c_attn", e, [(p + "self_attn.q_proj", q), (p + "self_attn.k_proj", kv), (p + "self_attn.v_proj", kv)], c.QkvBias)) yield return m;
            foreach (var m in Linear($"h.{l}.attn.c_proj", q, [(p + "self_attn.o_proj", e)], c.AttnOutBias)) yield return m;
            foreach (var m in Linear($"h.{l}.mlp.c_fc", e, [(p + "mlp.gate_proj", inner), (p + "mlp.up_proj", inner)], c.MlpBias)) yield return m;
            foreach (var m in Linear($"h.{l}.mlp.c_proj", inner, [(p + "mlp.down_proj", e)], c.MlpBias)) yield return m;
        }
        yield return Copy("ln_f.weight", "model.norm.weight", e);
        if (!c.TiedEmbeddings) yield return Copy("lm_head.weight", "lm_head.weight", c.VocabSize, e);
    }

    private static WeightMapping Same(string name, params long[] shape) => Copy(name, name, shape);

    private static WeightMapping Copy(string target, string source, params long[] shape) => new(target, [new(source, shape)], t => t[0]);

    /// <summary>Hugging Face linear layers ([out, in] each), stacked on their outputs and stored [in, out].</summary>
    private static IEnumerable<WeightMapping> Linear(string target, long input, (string Name, long Out)[] sources, bool bias = true)
    {
        yield return new(target + ".weight", sources.Select(s => new WeightSource(s.Name + ".weight", [s.Out, input])).ToArray(),
            t => (t.Length == 1 ? t[0] : cat(t, 0)).t());
        if (bias)
            yield return new(target + ".bias", sources.Select(s => new WeightSource(s.Name + ".bias", [s.Out])).ToArray(),
                t => t.Length == 1 ? t[0] : cat(t, 0));
    }
}
