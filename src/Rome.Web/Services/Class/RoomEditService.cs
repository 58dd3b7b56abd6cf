using Rome.Model;
using Rome.Model.Editing;
using Rome.Model.Evaluation;
using Rome.Model.Modeling;

namespace Rome.Web.Services.Class;

/// <summary>
/// The class edits the room's model together: a student proposes one fact at a time; the teacher accepts or rejects
/// each, and writes the accepted ones into the room's model as one batch (MEMIT by default), on the teacher's job. Every
/// member then sees each fact's result, the neighbours it changed, and the model's retention and fluency before and
/// after. The room's edits are a stack of their own: no tab's edits reach it, and it reaches no tab.
/// </summary>
public sealed class RoomEditService(ClassService classroom, SessionJobs jobs, CovarianceCache covariances)
{
    public const string Label = "class batch";
    public const int MaxPromptLength = 200, MaxSubjectLength = 100;

    public SessionJobs Jobs => jobs;

    /// <summary>This student's fact for the room (replacing their pending or rejected one), checked before it is shown.</summary>
    public Submission Submit(string? prompt, string? subject, string? target)
    {
        var (room, member) = (classroom.Room, classroom.Member);
        if (room is null || member is null) throw new RomeException("Join a room first.");
        if ((prompt ?? "").Length > MaxPromptLength) throw new RomeException($"The prompt is longer than {MaxPromptLength} characters.");
        if ((subject ?? "").Length > MaxSubjectLength) throw new RomeException($"The subject is longer than {MaxSubjectLength} characters.");
        if ((target ?? "").Trim().Length > RequestsFile.MaxTargetLength) throw new RomeException($"The new target is longer than {RequestsFile.MaxTargetLength} characters.");
        var request = EditRequest.FromUser(prompt ?? "", subject ?? "", target ?? "");
        if (room.Host.Model is { } lm)
        {
            lm.Tokenizer.FindSpan(request.Filled, request.Subject);
            var tokens = lm.Encode(request.Filled).Length;
            if (tokens > room.Host.Settings.MaxPromptTokens) throw new RomeException($"The prompt is {tokens} tokens long; the limit is {room.Host.Settings.MaxPromptTokens}.");
        }
        return room.Submit(member, request);
    }

    public void Accept(string id) => classroom.Led().Decide(id, accept: true);
    public void Reject(string id) => classroom.Led().Decide(id, accept: false);

    /// <summary>Writes the accepted facts into the room's model as one entry of its stack, measured before and after.</summary>
    public async Task<RoomBatch> WriteAsync(string method, IProgress<BatchProgress>? progress = null, CancellationToken cancel = default)
    {
        var room = classroom.Led();
        var (host, lm) = (room.Host, room.Host.Require());
        var (accepted, edits) = room.BeginWriting(() => new EditSession(lm));
        RoomBatch? batch = null;
        try
        {
            var requests = accepted.Select(s => s.Request).ToList();
            var editors = Editors.ForModel(lm, covariances);
            editors.Check(method, requests);
            batch = await jobs.Run(Label, c =>
            {
                var health = new ModelHealth(lm, host.Facts, requests.Select(r => r.Subject));
                var neighbours = requests.Select(r => host.Facts?.EditSuggestions(r.Prompt, r.Subject).Neighbours ?? []).ToList();
                var before = edits.Interventions();
                var (healthBefore, topsBefore) = (health.Measure(before, c), Tops(lm, neighbours, before));
                var outcome = BatchWorkflow.Run(edits, editors, method, requests, oneEntry: true, progress: progress, cancel: c);
                var after = edits.Interventions();
                var topsAfter = Tops(lm, neighbours, after);
                var flipped = neighbours.Select((prompts, i) => (IReadOnlyList<string>)prompts.Where((_, j) => topsBefore[i][j] != topsAfter[i][j]).ToList()).ToList();
                return new RoomBatch(new BatchReport(outcome, healthBefore, health.Measure(after)), flipped, accepted.Select(s => s.Member.Name).ToList());
            }, cancel);
            return batch;
        }
        finally { room.EndWriting(accepted, batch); }
    }

    /// <summary>Takes the room's last batch back.</summary>
    public void Undo()
    {
        var room = classroom.Led();
        if (room.Writing) throw new RomeException("Wait for the batch being written.");
        room.Edits?.Undo();
        room.EditsChanged();
    }

    /// <summary>
    /// What the room's model says after <paramref name="prompt"/>, beside the model before the class's facts: the most
    /// likely next tokens and a greedy continuation of each. Any member may ask; it runs on the asking tab's own queue,
    /// on a copy of the room's edits (a batch or an undo meanwhile does not change the answer halfway).
    /// </summary>
    public async Task<RoomAnswer> AskAsync(string? prompt, CancellationToken cancel = default)
    {
        var room = classroom.Room ?? throw new RomeException("Join a room first.");
        prompt = (prompt ?? "").Trim();
        if (prompt.Length == 0) throw new RomeException("Type a prompt for the model to continue.");
        if (prompt.Length > MaxPromptLength) throw new RomeException($"The prompt is longer than {MaxPromptLength} characters.");
        var (host, lm) = (room.Host, room.Host.Require());
        var ids = lm.Encode(prompt);
        if (ids.Length > host.Settings.MaxPromptTokens) throw new RomeException($"The prompt is {ids.Length} tokens long; the limit is {host.Settings.MaxPromptTokens}.");
        var (edits, batches) = (room.Edits?.CopyOverlays() ?? [], room.Edits?.Edits.Count ?? 0);
        try
        {
            return await jobs.Run(AskLabel, c =>
            {
                RoomAnswer.Side Say(Interventions? iv) => new(lm.Predict(ids, top: 5, iv).Top,
                    TextGenerator.Generate(lm, ids, prompt, new GenerationOptions { MaxTokens = AskTokens }, iv, c).Continuation);
                return new RoomAnswer(prompt, Say(null), Say(new Interventions { Overlays = edits }), batches);
            }, cancel);
        }
        finally { foreach (var edit in edits) edit.Dispose(); }
    }

    public const string AskLabel = "question to the room's model";
    /// <summary>How many tokens an answer continues the prompt by.</summary>
    public const int AskTokens = 20;

    /// <summary>Each prompt's top-1 token, per fact, on the model as <paramref name="iv"/> edits it.</summary>
    private static int[][] Tops(LanguageModel lm, IReadOnlyList<List<string>> prompts, Interventions iv)
    {
        var flat = prompts.SelectMany(p => p).ToList();
        if (flat.Count == 0) return prompts.Select(_ => Array.Empty<int>()).ToArray();
        using var logProbs = lm.NextTokenLogProbs(flat.Select(lm.Encode).ToList(), iv);
        using var top = logProbs.argmax(1);
        var ids = top.data<long>().Select(i => (int)i).ToArray();
        var at = 0;
        return prompts.Select(p => { var row = ids[at..(at + p.Count)]; at += p.Count; return row; }).ToArray();
    }
}

/// <summary>A prompt put to the room's model: what the model said before the class's facts, and what it says now.</summary>
public sealed record RoomAnswer(string Prompt, RoomAnswer.Side Before, RoomAnswer.Side After, int Batches)
{
    /// <summary>The most likely next tokens, and the greedy continuation.</summary>
    public sealed record Side(IReadOnlyList<TokenProbability> Top, string Continuation);
}
