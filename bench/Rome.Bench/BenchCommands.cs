using System.Diagnostics;
using Rome.Model;
using Rome.Model.Modeling;
using Rome.Model.Editing;
using Rome.Model.Tracing;
using Rome.Model.Training;
using Rome.Cli;
using Rome.Cli.Commands;
using Rome.Tests;
using static TorchSharp.torch;

namespace Rome.Bench;

/// <summary>Speed figures of the library (not tests: timings belong here). See README "Benchmarks".</summary>
internal static class BenchCommands
{
    public static int Run(CliArgs a, CancellationToken cancel)
    {
        var what = a.Verb ?? "forward";
        return what switch
        {
            "forward" => Forward(a),
            "trace" => Trace(a, cancel),
            "edit" => Edit(a, cancel),
            "keys" => Keys(a),
            _ => throw new RomeException($"Unknown benchmark '{what}' (forward, trace, edit, keys)."),
        };
    }

    /// <summary>Tokens per second of a forward pass, and the GFLOP/s that implies (2 x parameters x tokens, plus attention).</summary>
    private static int Forward(CliArgs a)
    {
        var json = a.Flag("json");
        var batch = a.Int("batch", 8);
        var tokens = a.Int("tokens", 0);
        var shape = a.Get("random");
        using var lm = shape is null ? Common.LoadModel(a) : RandomModel(shape);
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
        var perToken = 2.0 * lm.ParameterCount + c.Layers * 2.0 * length * c.Heads * c.HeadDim;
        var result = new
        {
            model = lm.Name, batch, tokens = length, secondsPerForward = seconds,
            tokensPerSecond = batch * length / seconds, gflops = perToken * batch * length / seconds / 1e9, threads = get_num_threads(),
        };
        if (json) Out.WriteJson(result);
        else Console.WriteLine($"{lm.Name}: batch {batch} x {length} tokens in {seconds * 1000:F1} ms = {result.tokensPerSecond:N0} tokens/s, {result.gflops:F1} GFLOP/s ({result.threads} threads)");
        return 0;
    }

    /// <summary>
    /// The shapes of public checkpoints, with random weights, made here (nothing is downloaded), for shape-realistic
    /// timings: GPT-2 small, Pythia-160M (GPT-NeoX) and Qwen2.5-0.5B. Their vocabularies hold GPT-2's, so its
    /// tokenizer drives them all.
    /// </summary>
    private static readonly Dictionary<string, ModelConfig> RandomShapes = new()
    {
        ["gpt2-small"] = ModelConfig.Gpt2(12, 768, 12, 1024),
        ["pythia-160m"] = new ModelConfig
        {
            Family = ModelFamily.GptNeoX, ModelType = "gpt_neox", VocabSize = 50304, Positions = 2048, Embd = 768, Layers = 12, Heads = 12,
            KvHeads = 12, HeadDim = 64, Inner = 3072, Activation = "gelu", Residual = Residual.Parallel, RotaryDims = 16, TiedEmbeddings = false, EosTokenId = 0,
        },
        ["qwen2.5-0.5b"] = new ModelConfig
        {
            Family = ModelFamily.Qwen2, ModelType = "qwen2", VocabSize = 151936, Positions = 32768, Embd = 896, Layers = 24, Heads = 14,
            KvHeads = 2, HeadDim = 64, Inner = 4864, NormEpsilon = 1e-6, RmsNorm = true, Activation = "silu", GatedMlp = true, RotaryDims = 64,
            RotaryBase = 1e6, AttnOutBias = false, MlpBias = false, TiedEmbeddings = true, EosTokenId = 151643,
        },
    };

    /// <summary>A model of one of <see cref="RandomShapes"/> with random weights.</summary>
    internal static LanguageModel RandomModel(string shape)
    {
        if (!RandomShapes.TryGetValue(shape, out var config))
            throw new RomeException($"Unknown shape '{shape}' ({string.Join(", ", RandomShapes.Keys)}).");
        var model = new DecoderModel(config);
        Trainer.InitializeWeights(model, 0);
        model.eval();
        foreach (var p in model.parameters()) p.requires_grad = false;
        return new LanguageModel(model, TextTokenizer.Gpt2(), shape + "-random", "random");
    }

    /// <summary>
    /// Seconds per grid of a 10-token prompt, fast against the naive algorithm with the same noise, per kind and for
    /// all three kinds together; the best of <c>--repeats</c> runs of each (the machine's noise only ever adds time).
    /// </summary>
    private static int Trace(CliArgs a, CancellationToken cancel)
    {
        var json = a.Flag("json");
        var naiveToo = !a.Flag("skip-naive");
        var samples = a.Int("samples", 10);
        var repeats = Math.Max(1, a.Int("repeats", 1));
        var kinds = a.Get("kinds", "hidden,mlp,attn").Split(',').Select(k => Enum.TryParse<TraceKind>(k, ignoreCase: true, out var kind) ? kind
            : throw new RomeException($"Unknown kind '{k}' (hidden, mlp, attn).")).ToArray();
        var shape = a.Get("random", "gpt2-small");
        using var bundled = Common.LoadModel(a);
        a.EnsureAllUsed();
        using var small = RandomModel(shape);
        const string prompt = "The Space Needle is located in the city of";
        const string subject = "Space Needle";
        var rows = new List<object>();
        foreach (var lm in new[] { bundled, small })
        {
            var noise = NoiseLevel.Multiplier * NoiseLevel.EmbeddingStd(lm, [subject]);
            var trace = new CausalTrace(lm);
            double fastTotal = 0, naiveTotal = 0;
            foreach (var kind in kinds)
            {
                var request = new TraceRequest { Prompt = prompt, Subject = subject, Kinds = [kind], Samples = samples };
                var (fast, fastSeconds) = Best(repeats, () => TraceResult.Collect(trace.Run(request, noise, cancel)));
                double? naiveSeconds = null, maxDiff = null;
                if (naiveToo)
                {
                    var (naive, seconds) = Best(repeats, () => NaiveTrace.Run(lm, request, noise, cancel));
                    naiveSeconds = seconds;
                    maxDiff = fast.Scores[kind].Zip(naive.Scores[kind]).SelectMany(p => p.First.Zip(p.Second, (x, y) => Math.Abs(x - y))).Max();
                }
                fastTotal += fastSeconds;
                naiveTotal += naiveSeconds ?? 0;
                rows.Add(Row(lm, fast.Setup.Tokens.Length, kind.ToString(), fastSeconds, naiveSeconds, maxDiff, json));
            }
            if (kinds.Length > 1) rows.Add(Row(lm, 10, "all", fastTotal, naiveToo ? naiveTotal : null, null, json));

            // Attribution patching: the same grids estimated from one backward pass, against the fast trace's total.
            var all = new TraceRequest { Prompt = prompt, Subject = subject, Kinds = kinds, Samples = samples, Options = new Rome.Model.Tracing.TraceOptions(Method: TraceMethod.Attribution) };
            var (estimated, estimatedSeconds) = Best(repeats, () => TraceResult.Collect(new AttributionPatching(lm).Run(all, noise, cancel)));
            var patched = TraceResult.Collect(trace.Run(all with { Options = Rome.Model.Tracing.TraceOptions.Paper }, noise, cancel));
            var agreement = TraceAgreement.Compare(patched, estimated);
            if (!json)
                Console.WriteLine($"{lm.Name,-18} attribution patching, all kinds: {estimatedSeconds,6:F2} s, {fastTotal / estimatedSeconds,5:F1}x faster than the fast trace; rank correlation " +
                                  string.Join(", ", agreement.Select(g => $"{g.Kind} {g.RankCorrelation:F2}")));
            rows.Add(new { model = lm.Name, layers = lm.Layers, kind = "attribution, all", estimatedSeconds, fastSeconds = fastTotal, speedup = fastTotal / estimatedSeconds,
                           rankCorrelation = agreement.ToDictionary(g => g.Kind.ToString(), g => g.RankCorrelation) });
        }
        if (json) Out.WriteJson(rows);
        return 0;
    }

    private static (T Result, double Seconds) Best<T>(int repeats, Func<T> run)
    {
        var best = double.MaxValue;
        T result = default!;
        for (int i = 0; i < repeats; i++)
        {
            var clock = Stopwatch.StartNew();
            result = run();
            best = Math.Min(best, clock.Elapsed.TotalSeconds);
        }
        return (result, best);
    }

    private static object Row(LanguageModel lm, int tokens, string kind, double fastSeconds, double? naiveSeconds, double? maxDiff, bool json)
    {
        if (!json)
            Console.WriteLine($"{lm.Name,-18} {kind,-6} {tokens} tokens x {lm.Layers} layers: fast {fastSeconds,6:F2} s" +
                (naiveSeconds is { } n ? $", naive {n,7:F2} s, {n / fastSeconds,5:F1}x faster" : "") + (maxDiff is { } d ? $", max |diff| {d:E1}" : ""));
        return new { model = lm.Name, layers = lm.Layers, tokens, kind, fastSeconds, naiveSeconds, speedup = naiveSeconds / fastSeconds, maxDiff };
    }

    /// <summary>Seconds of one ROME edit (k*, v*, update) with C and the context templates already cached, as in the web app after its first edit.</summary>
    private static int Edit(CliArgs a, CancellationToken cancel)
    {
        var json = a.Flag("json");
        var repeats = a.Int("repeats", 3);
        var shape = a.Get("random", "gpt2-small");
        using var bundled = Common.LoadModel(a);
        a.EnsureAllUsed();
        using var small = shape == "none" ? null : RandomModel(shape);
        var corpus = CovarianceStatistics.DefaultCorpus(bundled).ToList();
        var request = new EditRequest("{} is located in the city of", "The Space Needle", "Paris");
        var rows = new List<object>();
        foreach (var lm in small is null ? [bundled] : new[] { bundled, small })
        {
            var hp = RomeHyperParameters.ForModel(lm.Folder, lm.Config);
            using var c = CovarianceStatistics.Compute(lm, hp.Layer, corpus, lm == bundled ? hp.CovarianceTokens : 20_000, cancel: cancel);
            var editor = new RomeEditor(lm, hp);
            using (editor.Compute(request, c, cancel: cancel)) { } // warm-up
            var times = new List<double>();
            var steps = 0;
            for (int i = 0; i < repeats; i++)
            {
                var clock = Stopwatch.StartNew();
                using var edit = editor.Compute(request, c, cancel: cancel);
                times.Add(clock.Elapsed.TotalSeconds);
                steps = edit.Updates;
            }
            var median = times.Order().ElementAt(times.Count / 2);
            rows.Add(new { model = lm.Name, layers = lm.Layers, width = lm.Config.Embd, layer = hp.Layer, secondsMedian = median, vStarSteps = steps });
            if (!json) Console.WriteLine($"{lm.Name,-18} layer {hp.Layer,2}: one edit in {median:F2} s (median of {repeats}, {steps} v* steps, C and context templates cached)");
        }
        if (json) Out.WriteJson(rows);
        return 0;
    }

    /// <summary>
    /// Not a speed figure: why a large MEMIT batch breaks on a narrow MLP. For the first N CounterFact cases, at each
    /// edited layer, the keys K [width, N] MEMIT writes (no z needed): how many directions they span (the singular values
    /// holding 99 % of K's energy; the stable rank Σσ² / σ₁²), how alike they are (mean |cos| between two keys), and the
    /// share of a residual the update can deliver at the keys. MEMIT's change gives ΔW K = R M with
    /// M = Kᵀ (λC + K Kᵀ)⁻¹ K, whose eigenvalues lie in [0, 1): tr(M) / N is the mean share over residual directions,
    /// and tr(M) ≤ rank K ≤ the width, so a batch wider than the MLP cannot be written whole.
    /// </summary>
    private static int Keys(CliArgs a)
    {
        var sizes = CliArgs.IntList(a.Get("n", "10,30,100,300,1000"), "n");
        using var lm = Common.LoadModel(a);
        a.EnsureAllUsed();
        var hp = MemitHyperParameters.ForModel(lm.Folder, lm.Config);
        using var covariances = Common.Covariances();
        var cases = Rome.Model.Evaluation.CounterFactDataset.Load(Path.Combine(lm.Folder, "counterfact.json"));
        var templates = ContextTemplates.For(lm, hp.ContextTemplateLengthParams, hp.ContextTemplatePrompts);
        var groups = ContextTemplates.GroupSizes(hp.ContextTemplateLengthParams);
        Console.WriteLine($"| facts | layer | width | rank (99 % of energy) | stable rank | mean \\|cos\\| | delivered share tr(M)/N (λ {hp.MomentUpdateWeight}) |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        foreach (var n in sizes)
        {
            var requests = cases.Take(n).Select(c => new EditRequest(c.Rewrite.Prompt, c.Rewrite.Subject, c.Rewrite.TargetNew.Str)).ToList();
            foreach (var layer in hp.Layers)
            {
                using var scope = NewDisposeScope();
                var k = ComputeKs.Keys(lm, layer, requests, templates, groups, []);
                var s2 = linalg.svdvals(k).square();
                var energy = s2.cumsum(0) / s2.sum();
                var rank99 = (energy < 0.99).sum().item<long>() + 1;
                var stable = (s2.sum() / s2[0]).item<double>();
                var unit = k / k.norm(0, keepdim: true);
                var cos = unit.t().matmul(unit).abs();
                var meanCos = ((cos.sum() - cos.diagonal().sum()) / (requests.Count * (requests.Count - 1.0))).item<double>();
                var c = covariances.Get(lm, layer, hp.CovarianceTokens);
                var m = k.t().matmul(linalg.solve(c * hp.MomentUpdateWeight + k.matmul(k.t()), k));
                var delivered = (m.trace() / requests.Count).item<double>();
                Console.WriteLine($"| {requests.Count} | {layer} | {k.shape[0]} | {rank99} | {stable:F1} | {meanCos:F2} | {delivered:F3} |");
            }
        }
        return 0;
    }
}
