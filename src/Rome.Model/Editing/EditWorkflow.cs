using Rome.Model.Modeling;
using static TorchSharp.torch;

namespace Rome.Model.Editing;

/// <summary>What an edit in progress reports: a stage, the before view, a v* step, or the after view.</summary>
public abstract record EditUpdate;
public sealed record EditStage(string Text) : EditUpdate;
public sealed record EditMeasured(EditReport Report, bool After) : EditUpdate;
public sealed record EditStep(EditProgress Step) : EditUpdate;
public sealed record EditJudged(EditVerdict Verdict) : EditUpdate;

/// <summary>An edit made and measured: the views before and after, whether it took, the edit, and the seconds ROME took.</summary>
public sealed record EditOutcome(EditRequest Request, EditReport Before, EditReport After, EditVerdict Verdict, AppliedEdit Edit, double Seconds);

/// <summary>
/// One edit as a user makes it, for the web app and the CLI alike: the model's current answer becomes the old target
/// (unless given), the request is checked against the model, the prompts are measured, ROME edits the session's model,
/// the prompts are measured again (each neighbour's own answer from before), and the verdict says whether it took. An
/// edit that did not take stays on the stack, marked so, to be undone or looked at.
/// </summary>
public static class EditWorkflow
{
    public static EditOutcome Run(EditSession session, RomeEditor editor, EditRequest request, IReadOnlyList<(string Kind, string Text)> prompts,
                                  Tensor? covariance, IProgress<EditUpdate>? progress = null, CancellationToken cancel = default, int seed = 0)
    {
        editor.Check(request, seed);
        var lm = session.Model;
        if (request.OldTarget is not { Length: > 0 })
        {
            using var next = lm.NextTokenLogProbs(lm.Encode(request.Filled), session.Interventions());
            request = request with { OldTarget = lm.Tokenizer.TokenText((int)next.argmax().item<long>()).Trim() };
        }
        progress?.Report(new EditStage("Measuring the model before the edit..."));
        var before = EditComparison.Measure(lm, session.Interventions(), request, prompts, seed: seed);
        progress?.Report(new EditMeasured(before, After: false));
        cancel.ThrowIfCancellationRequested();

        progress?.Report(new EditStage($"Optimising v* at layer {editor.Layer}..."));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var edit = session.Apply(editor, request, covariance, progress is null ? null : new SyncProgress<EditProgress>(p => progress.Report(new EditStep(p))), cancel);
        var seconds = clock.Elapsed.TotalSeconds;

        progress?.Report(new EditStage("Measuring the model after the edit..."));
        var after = EditComparison.Measure(lm, session.Interventions(), request, prompts, before.Prompts.Select(p => p.Answer).ToList(), seed);
        progress?.Report(new EditMeasured(after, After: true));
        edit.Verdict = EditVerdict.Of(lm.Tokenizer.Encode(" " + request.Target.Trim())[0], before, after);
        progress?.Report(new EditJudged(edit.Verdict));
        return new EditOutcome(request, before, after, edit.Verdict, edit, seconds);
    }
}
