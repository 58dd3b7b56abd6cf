namespace Rome.Model.Editing;

/// <summary>
/// Whether an edit did what it was asked, in the terms a class sees (the paper's efficacy, paraphrase and neighbourhood
/// scores, one fact at a time, by the top-1 answer): did the prompt's top-1 become the new target; how many paraphrases
/// now say it; how many neighbours kept their own answer, and which ones flipped. Every editor and every batch is
/// judged the same way.
/// </summary>
public sealed record EditVerdict(bool Took, int ParaphrasesSaying, int Paraphrases, int NeighboursKept, int Neighbours, IReadOnlyList<string> Flipped)
{
    /// <summary>
    /// The verdict of an edit from its before and after views (the same prompts, in the same order). A prompt says the
    /// new target when its top-1 token is the target's first token (<paramref name="targetToken"/>), as CounterFact's
    /// top-1 counts it.
    /// </summary>
    public static EditVerdict Of(int targetToken, EditReport before, EditReport after)
    {
        bool Says(PromptReport p) => p.Top[0].Id == targetToken;
        var rows = before.Prompts.Zip(after.Prompts).ToList();
        var paraphrases = rows.Where(r => r.First.Kind == PromptReport.Paraphrase).ToList();
        var neighbours = rows.Where(r => r.First.Kind == PromptReport.Neighbour).ToList();
        var flipped = neighbours.Where(r => r.First.Top[0].Id != r.Second.Top[0].Id).Select(r => r.First.Text).ToList();
        return new EditVerdict(rows.Count > 0 && Says(rows[0].Second), paraphrases.Count(r => Says(r.Second)), paraphrases.Count,
            neighbours.Count - flipped.Count, neighbours.Count, flipped);
    }

    /// <summary>Whether every neighbour kept its answer.</summary>
    public bool Specific => NeighboursKept == Neighbours;

    /// <summary>The verdict in one line: "The edit took: 5 of 6 paraphrases say it; 2 of 3 neighbours kept their answer (flipped: ...)."</summary>
    public string Summary
    {
        get
        {
            var parts = new List<string>();
            if (Paraphrases > 0) parts.Add($"{ParaphrasesSaying} of {Paraphrases} paraphrase{(Paraphrases == 1 ? "" : "s")} now say{(ParaphrasesSaying == 1 ? "s" : "")} it");
            if (Neighbours > 0) parts.Add($"{NeighboursKept} of {Neighbours} neighbour{(Neighbours == 1 ? "" : "s")} kept {(Neighbours == 1 ? "its" : "their")} own answer" +
                                          (Flipped.Count > 0 ? $" (changed: {string.Join("; ", Flipped)})" : ""));
            var head = Took ? "The edit took: the prompt's top answer is now the new target" : "The edit did not take: the prompt's top answer is not the new target";
            return head + (parts.Count > 0 ? "; " + string.Join("; ", parts) : "") + ".";
        }
    }
}
