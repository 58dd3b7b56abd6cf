using System.Diagnostics;
using Rome.Model;
using Rome.Model.Modeling;
using static TorchSharp.torch;

namespace Rome.Cli.Commands;

internal static class BenchCommands
{
    public static int Run(CliArgs a, CancellationToken cancel)
    {
        var what = a.Verb ?? "forward";
        return what switch
        {
            "forward" => Forward(a),
            _ => throw new RomeException($"Unknown benchmark '{what}' (forward, trace, edit)."),
        };
    }

    /// <summary>Tokens per second of a forward pass, and the GFLOP/s that implies (2 x parameters x tokens, plus attention).</summary>
    private static int Forward(CliArgs a)
    {
        var json = a.Flag("json");
        var batch = a.Int("batch", 8);
        var tokens = a.Int("tokens", 0);
        using var lm = Common.LoadModel(a);
        a.EnsureAllUsed();
        var c = lm.Config;
        var length = tokens > 0 ? Math.Min(tokens, c.Positions) : Math.Min(64, c.Positions);
        using var noGrad = no_grad();
        using var ids = randint(0, c.VocabSize, [batch, length], dtype: int64, device: lm.Device);
        for (int i = 0; i < 2; i++) using (lm.Model.Forward(ids)) { }
        var runs = 0;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed.TotalSeconds < 3 || runs < 3)
        {
            using (lm.Model.Forward(ids)) { }
            runs++;
        }
        var seconds = clock.Elapsed.TotalSeconds / runs;
        var perToken = 2.0 * (c.Layers * (12.0 * c.Embd * c.Embd) + c.Embd * (double)c.VocabSize) + c.Layers * 2.0 * length * c.Embd;
        var result = new
        {
            model = lm.Name, batch, tokens = length, secondsPerForward = seconds,
            tokensPerSecond = batch * length / seconds, gflops = perToken * batch * length / seconds / 1e9, threads = get_num_threads(),
        };
        if (json) Out.WriteJson(result);
        else Console.WriteLine($"{lm.Name}: batch {batch} x {length} tokens in {seconds * 1000:F1} ms = {result.tokensPerSecond:N0} tokens/s, {result.gflops:F1} GFLOP/s ({result.threads} threads)");
        return 0;
    }
}
