using System.Globalization;
using Rome.Model;
using Rome.Model.Modeling;

namespace Rome.Cli.Commands;

internal static class ModelCommands
{
    public static int Info(CliArgs a, CancellationToken _)
    {
        var json = a.Flag("json");
        using var lm = Common.LoadModel(a);
        a.EnsureAllUsed();
        var c = lm.Config;
        var facts = Rome.Model.Facts.FactCorpus.ForModel(lm.Folder);
        var mlpFree = Enumerable.Range(0, c.Layers).Where(l => !lm.Model.HasMlp(l)).ToArray();
        var info = new
        {
            name = lm.Name, folder = lm.Folder, architecture = c.FamilyName, parameters = lm.ParameterCount,
            layers = c.Layers, width = c.Embd, heads = c.Heads, keyValueHeads = c.KvHeads, mlpWidth = c.Inner, context = c.Positions,
            positions = c.LearnedPositions ? "learned" : $"rotary on {c.RotaryDims} of {c.HeadDim} dimensions per head",
            attention = c.AttentionDescription,
            editSite = c.NativeEditSite("L"), mlpFreeLayers = mlpFree,
            vocabulary = c.VocabSize, fingerprint = lm.Fingerprint, device = lm.Device.ToString(),
            trainedFacts = facts?.Facts.Count,
        };
        if (json) Out.WriteJson(info);
        else
        {
            Console.WriteLine($"{info.name} ({info.folder})");
            Console.WriteLine($"  {info.architecture}, {info.parameters:N0} parameters: {c.Layers} layers, width {c.Embd}, {c.Heads} heads"
                + (c.KvHeads != c.Heads ? $" ({c.KvHeads} for keys and values)" : "") + $", MLP {c.Inner}, context {c.Positions}, vocabulary {c.VocabSize}");
            Console.WriteLine($"  positions {info.positions}; attention {info.attention}; ROME edits {info.editSite}");
            if (mlpFree.Length > 0)
                Console.WriteLine($"  no MLP in block{(mlpFree.Length > 1 ? "s" : "")} {string.Join(", ", mlpFree)}: trained so, with zero weights (included in the count above)");
            Console.WriteLine($"  weights fingerprint {info.fingerprint}, device {info.device}" + (facts is null ? "" : $", trained on {facts.Facts.Count} facts"));
        }
        return 0;
    }

    /// <summary>Copies a model folder (weights, optionally as float16, and the files that travel with it).</summary>
    public static int Export(CliArgs a, CancellationToken _)
    {
        var output = Path.GetFullPath(a.Require("out"));
        var float16 = a.Get("dtype", "float32") switch
        {
            "float32" => false, "float16" => true,
            var other => throw new RomeException($"--dtype must be float32 or float16, not '{other}'."),
        };
        using var lm = Common.LoadModel(a);
        a.EnsureAllUsed();
        using var session = new Rome.Model.Editing.EditSession(lm);
        session.Bake(output, float16);
        Console.WriteLine($"Wrote {lm.Name} to {output} ({new FileInfo(Path.Combine(output, Checkpoint.WeightsFile)).Length / 1e6:F1} MB of weights).");
        return 0;
    }

    public static int Predict(CliArgs a, CancellationToken _)
    {
        var json = a.Flag("json");
        var top = a.Int("top", 10);
        var prompt = a.Get("prompt");
        var idsText = a.Get("ids");
        using var lm = Common.LoadModel(a);
        a.EnsureAllUsed();
        if ((prompt is null) == (idsText is null)) throw new RomeException("Give exactly one of --prompt TEXT or --ids 1,2,3.");
        int[] ids = prompt is not null ? lm.Encode(prompt) : ParseIds(idsText!, lm.Config.VocabSize);
        var p = lm.Predict(ids, top);
        if (json) { Out.WriteJson(p); return 0; }
        Console.WriteLine($"{ids.Length} tokens: {string.Join(" ", ids.Select(i => Out.Show(lm.Tokenizer.TokenLabel(i))))}");
        Console.WriteLine("Next token:");
        foreach (var t in p.Top) Console.WriteLine($"  {t.Probability,8:P2}  {Out.Show(t.Text),-20} (id {t.Id})");
        Console.WriteLine("Per position: argmax / log-sum-exp of the logits");
        for (int i = 0; i < ids.Length; i++)
            Console.WriteLine($"  {i,3} {Out.Show(lm.Tokenizer.TokenLabel(ids[i])),-18} -> {Out.Show(lm.Tokenizer.TokenLabel(p.ArgmaxPerPosition[i])),-18} {p.LogSumExpPerPosition[i]:F4}");
        return 0;
    }

    public static int Generate(CliArgs a, CancellationToken cancel)
    {
        var json = a.Flag("json");
        var prompt = a.Require("prompt");
        var options = new GenerationOptions { MaxTokens = a.Int("max-tokens", 30), TopK = a.Int("top-k", 0), Seed = a.Int("seed", 0) };
        using var lm = Common.LoadModel(a);
        a.EnsureAllUsed();
        var g = TextGenerator.Generate(lm, prompt, options, cancel: cancel);
        if (json) Out.WriteJson(g); else Console.WriteLine(g.Text);
        return 0;
    }

    private static int[] ParseIds(string text, int vocab)
    {
        var ids = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(s =>
            int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var id) && id >= 0 && id < vocab
                ? id : throw new RomeException($"--ids: '{s}' is not a token id between 0 and {vocab - 1}.")).ToArray();
        return ids.Length > 0 ? ids : throw new RomeException("--ids is empty.");
    }
}
