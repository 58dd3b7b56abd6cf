using Rome.Model;
using Rome.Model.Editing;
using Rome.Model.Modeling;
using static TorchSharp.torch;

namespace Rome.Cli.Commands;

internal static class EditCommands
{
    /// <summary>Hyper-parameters: --hparams FILE, else the model folder's rome-hparams.json, else defaults; --layer overrides.</summary>
    private static RomeHyperParameters HyperParameters(CliArgs a, LanguageModel lm)
    {
        var hp = a.Get("hparams") is { } file ? RomeHyperParameters.Load(file) : RomeHyperParameters.ForModel(lm.Folder, lm.Config);
        if (a.Has("layer")) hp = hp with { Layer = a.Int("layer", hp.Layer) };
        if (a.Flag("identity-covariance")) hp = hp with { Covariance = "identity" };
        if (a.Get("key") is { } key) hp = hp with { Key = key };
        return hp;
    }

    /// <summary>C for the edited layer from <paramref name="cache"/>, built with progress on first use; null for identity.</summary>
    private static Tensor? Covariance(CovarianceCache cache, LanguageModel lm, RomeHyperParameters hp, string? corpusPath, CancellationToken cancel)
    {
        var started = DateTime.UtcNow;
        return cache.ForEditor(lm, hp, corpusPath, new Progress<double>(f => Out.Progress(f, $"C statistics for layer {hp.Layer}", DateTime.UtcNow - started)), cancel);
    }

    public static int Stats(CliArgs a, CancellationToken cancel)
    {
        var corpusPath = a.Get("corpus");
        using var lm = Common.LoadModel(a);
        var hp = HyperParameters(a, lm);
        if (a.Has("samples")) hp = hp with { CovarianceTokens = a.Int("samples", hp.CovarianceTokens) };
        a.EnsureAllUsed();
        using var cache = Common.Covariances();
        var c = Covariance(cache, lm, hp with { Covariance = "corpus" }, corpusPath, cancel)!;
        Console.WriteLine($"C for layer {hp.Layer}: {c.shape[0]}x{c.shape[1]}, trace {c.trace().item<double>():F2}; cached under {Common.Settings.CacheFolder}");
        return 0;
    }

    public static int Edit(CliArgs a, CancellationToken cancel)
    {
        var method = a.Get("method", "rome");
        if (a.Has("requests") || Editors.WritesBatches(method)) return EditMany(a, method, cancel);
        if (method == "r-rome") a = a.With("key", "consistent");
        else if (method != "rome") throw new RomeException($"Unknown editing method '{method}': choose {string.Join(", ", Editors.Methods)}.");
        var json = a.Flag("json");
        var request = new EditRequest(a.Require("prompt"), a.Require("subject"), a.Require("target"), a.Get("old-target"));
        var paraphrases = a.All("paraphrase");
        var neighbours = a.All("neighbor").Concat(a.All("neighbour")).ToList();
        var saveEdits = a.Get("save-edits");
        var loadEdits = a.Get("load-edits");
        var bake = a.Get("bake");
        var corpusPath = a.Get("corpus");
        var seed = a.Int("seed", 0);
        using var lm = Common.LoadModel(a);
        var hp = HyperParameters(a, lm);
        a.EnsureAllUsed();

        using var session = new EditSession(lm);
        if (loadEdits is not null) Console.Error.WriteLine($"Loaded {session.Import(loadEdits)} earlier edit(s) from {loadEdits}.");
        var prompts = new List<(string Kind, string Text)> { (PromptReport.Prompt, request.Filled) };
        prompts.AddRange(paraphrases.Select(p => (PromptReport.Paraphrase, p)));
        prompts.AddRange(neighbours.Select(p => (PromptReport.Neighbour, p)));
        using var cache = Common.Covariances();
        var outcome = EditWorkflow.Run(session, new RomeEditor(lm, hp), request, prompts, Covariance(cache, lm, hp, corpusPath, cancel),
            json ? null : new SyncProgress<EditUpdate>(u =>
            {
                if (u is EditStep { Step: var p }) Console.Error.WriteLine($"  v* step {p.Step,2}/{p.Steps}: nll {p.Nll:F3}  kl {p.Kl:F4}  decay {p.WeightDecay:F4}  p(target) {p.TargetProbability:P1}");
                else if (u is EditMeasured { After: false, Report: var r } && r.Prompts[0].Top[0].Text.Trim() == request.Target.Trim())
                    Console.Error.WriteLine($"Note: the model already predicts '{request.Target}' for this prompt; editing anyway.");
            }),
            cancel, seed);
        var (before, after, edit, seconds) = (outcome.Before, outcome.After, outcome.Edit, outcome.Seconds);
        request = outcome.Request;

        if (saveEdits is not null) session.Export(saveEdits);
        if (bake is not null) session.Bake(bake);

        if (json)
        {
            Out.WriteJson(new { request, verdict = outcome.Verdict, layer = edit.Layer, module = string.Join(", ", edit.Overlays.Select(o => o.Module)), seconds, updates = edit.Updates, contextTemplates = edit.ContextTemplates, before, after, savedEdits = saveEdits, baked = bake });
            return 0;
        }
        Console.WriteLine($"\nEdited {string.Join(", ", edit.Overlays.Select(o => o.Module))} in {seconds:F2} s ({edit.Updates} v* updates): \"{request.Filled}\" -> '{request.Target}'\n");
        for (int i = 0; i < prompts.Count; i++)
        {
            var (b, f) = (before.Prompts[i], after.Prompts[i]);
            Console.WriteLine($"[{prompts[i].Kind}] {prompts[i].Text}");
            Console.WriteLine($"   before: {string.Join(", ", b.Top.Select(t => $"{Out.Show(t.Text)} {t.Probability:P1}"))}");
            Console.WriteLine($"   after:  {string.Join(", ", f.Top.Select(t => $"{Out.Show(t.Text)} {t.Probability:P1}"))}");
            Console.WriteLine($"   new {before.NewLabel} {b.NewTarget:P2} -> {f.NewTarget:P2}" + (b.AnswerProbability is { } o ? $";  {(prompts[i].Kind == PromptReport.Neighbour ? "its own answer" : "old")} p({b.Answer}) {o:P2} -> {f.AnswerProbability:P2}" : ""));
        }
        Console.WriteLine($"\nGeneration before: {before.Generation}\nGeneration after:  {after.Generation}");
        Console.WriteLine($"\n{outcome.Verdict.Summary}");
        if (saveEdits is not null) Console.WriteLine($"Edits saved to {saveEdits}");
        if (bake is not null) Console.WriteLine($"Edited model written to {bake}");
        return 0;
    }

    /// <summary>
    /// Many facts (--requests FILE, or the one --prompt/--subject/--target) with any method: all at once, or with
    /// --sequential --batch B at a time, each batch an entry of the saved edits.
    /// </summary>
    private static int EditMany(CliArgs a, string method, CancellationToken cancel)
    {
        var json = a.Flag("json");
        var requests = a.Get("requests") is { } file ? RequestsFile.Read(file, file)
            : [new EditRequest(a.Require("prompt"), a.Require("subject"), a.Require("target"), a.Get("old-target"))];
        var batch = a.Flag("sequential") ? a.Int("batch", 1) : 0;
        if (!a.Flag("sequential") && a.Has("batch")) throw new RomeException("--batch B goes with --sequential (B facts at a time); without it every fact is written at once.");
        var (saveEdits, loadEdits, bake, corpusPath) = (a.Get("save-edits"), a.Get("load-edits"), a.Get("bake"), a.Get("corpus"));
        using var lm = Common.LoadModel(a);
        var rome = HyperParameters(a, lm);
        var memit = a.Get("memit-hparams") is { } m ? MemitHyperParameters.Load(m) : MemitHyperParameters.ForModel(lm.Folder, lm.Config);
        if (a.Get("layers") is { } layers) memit = memit with { Layers = CliArgs.IntList(layers, "layers") };
        if (a.Flag("identity-covariance")) memit = memit with { Covariance = "identity" };
        a.EnsureAllUsed();

        using var session = new EditSession(lm);
        if (loadEdits is not null) Console.Error.WriteLine($"Loaded {session.Import(loadEdits)} earlier edit(s) from {loadEdits}.");
        using var cache = Common.Covariances();
        var editors = new Editors(lm, rome, memit, cache, corpusPath);
        var outcome = BatchWorkflow.Run(session, editors, method, requests, batch, oneEntry: false,
            json ? null : new SyncProgress<BatchProgress>(p => { if (p.Step is null) Console.Error.WriteLine($"  {p.Text}"); }), cancel);
        if (saveEdits is not null) session.Export(saveEdits);
        if (bake is not null) session.Bake(bake);

        if (json)
        {
            Out.WriteJson(new
            {
                method, layers = outcome.Layers, contextTemplates = outcome.ContextTemplates, entries = outcome.Entries, seconds = outcome.Seconds, took = outcome.Took,
                facts = outcome.Facts.Select(f => new { prompt = f.Request.Prompt, subject = f.Request.Subject, target = f.Request.Target, before = f.Before, after = f.After, topAfter = f.TopAfter.Trim(), took = f.Took }),
                savedEdits = saveEdits, baked = bake,
            });
            return 0;
        }
        Console.WriteLine($"\n{method} wrote {requests.Count} fact(s) into layer(s) {string.Join(", ", outcome.Layers)} in {outcome.Seconds:F1} s ({outcome.Entries} entr{(outcome.Entries == 1 ? "y" : "ies")}):\n");
        foreach (var f in outcome.Facts)
            Console.WriteLine($"  {(f.Took ? "took " : "     ")} {f.Request.Filled} -> {f.Request.Target}: p {f.Before:P1} -> {f.After:P1}, top now {Out.Show(f.TopAfter)}");
        Console.WriteLine($"\n{outcome.Took} of {requests.Count} now answer the new target first.");
        if (saveEdits is not null) Console.WriteLine($"Edits saved to {saveEdits}");
        if (bake is not null) Console.WriteLine($"Edited model written to {bake}");
        return 0;
    }
}
