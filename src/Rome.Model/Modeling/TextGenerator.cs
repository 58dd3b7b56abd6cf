using static TorchSharp.torch;

namespace Rome.Model.Modeling;

public sealed record GenerationOptions
{
    public int MaxTokens { get; init; } = 30;
    /// <summary>0 or 1: greedy. Otherwise sample from the K most likely tokens.</summary>
    public int TopK { get; init; } = 0;
    public int Seed { get; init; } = 0;
}

public sealed record Generation(string Prompt, string Continuation, int[] Tokens)
{
    public string Text => Prompt + Continuation;
}

/// <summary>Greedy or top-k sampled continuation with a KV cache, stopping at max tokens or end-of-text.</summary>
public static class TextGenerator
{
    public static Generation Generate(LanguageModel lm, string prompt, GenerationOptions? options = null,
                                      Interventions? iv = null, CancellationToken cancel = default) =>
        Generate(lm, lm.Encode(prompt), prompt, options, iv, cancel);

    /// <summary>Continues token ids, e.g. [<c>&lt;|endoftext|&gt;</c>] to sample how text starts.</summary>
    public static Generation Generate(LanguageModel lm, int[] ids, string prompt, GenerationOptions? options = null,
                                      Interventions? iv = null, CancellationToken cancel = default)
    {
        options ??= new();
        var room = lm.Config.Positions - ids.Length;
        if (room <= 0) throw new RomeException($"The prompt is {ids.Length} tokens long; this model reads at most {lm.Config.Positions}.");
        var max = Math.Min(options.MaxTokens, room);
        using var random = new TorchSharp.torch.Generator((ulong)options.Seed);
        using var cache = new KvCache(lm.Layers);
        using var noGrad = no_grad();
        var produced = new List<int>();
        var next = ids.ToArray();
        for (int step = 0; step < max; step++)
        {
            cancel.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var logits = lm.Model.Forward(lm.Ids(next), iv, cache, lastOnly: true)[0, -1].to(float32);
            int token;
            if (options.TopK <= 1) token = (int)logits.argmax().item<long>();
            else
            {
                var (values, indices) = logits.topk(options.TopK);
                var choice = multinomial(values.softmax(-1), 1, generator: random);
                token = (int)indices[choice.item<long>()].item<long>();
            }
            if (token == lm.Config.EosTokenId) break;
            produced.Add(token);
            next = [token];
        }
        return new Generation(prompt, lm.Tokenizer.Decode(produced), produced.ToArray());
    }
}
