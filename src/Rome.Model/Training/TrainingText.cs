using Rome.Model.Facts;

namespace Rome.Model.Training;

/// <summary>
/// The text a model is trained on, of one of two kinds. Where a model keeps its facts depends on this text more than
/// on its size (docs/knowing-site.md tells the experiments):
/// <list type="bullet">
/// <item><c>templates</c>: each subject's facts as template sentences, one paragraph per subject. The last token
/// can read the subject's raw tokens by attention and look the fact up in its own MLPs, so facts live at the
/// last token (rome-tiny).</item>
/// <item><c>knowing</c>: facts after 0-2 sentences about other subjects; passages that name a subject once and
/// then use its pronoun; biographies of fictional people (several attributes each, named once, with the first and
/// last words of real subjects, so only the whole name identifies a person); and lists of a subject's objects right after its name. Each
/// asks the subject's last token to stand for what the subject is. In the experiments this moved the lookup to the
/// MLPs at the subject's last token and the read-out to attention at the last token, as in GPT-2 (Meng et al. 2022;
/// Geva et al. 2023; Allen-Zhu and Li, "Physics of Language Models 3.1", 2023): models/rome-knowing.</item>
/// </list>
/// Every document depends only on the <see cref="Random"/> it is given, so training stays seeded.
/// </summary>
public sealed class TrainingText(FactCorpus corpus, string kind)
{
    public static readonly string[] Kinds = ["templates", "knowing"];

    private readonly string _kind = Kinds.Contains(kind) ? kind
        : throw new RomeException($"Unknown training text '{kind}' ({string.Join(", ", Kinds)}).");

    private readonly Dictionary<string, List<Fact>> _bySubject = corpus.Facts.GroupBy(f => f.Subject).ToDictionary(g => g.Key, g => g.ToList());
    private readonly Dictionary<string, List<Fact>> _byPerson = corpus.People.GroupBy(f => f.Subject).ToDictionary(g => g.Key, g => g.ToList());
    private string[] Subjects => _subjects ??= _bySubject.Keys.ToArray();
    private string[]? _subjects;
    private string[] People => _people ??= _byPerson.Keys.ToArray();
    private string[]? _people;

    /// <summary>Share of <c>knowing</c> documents that are fictional biographies (when the corpus has people).</summary>
    public double BiographyShare { get; init; }

    /// <summary>
    /// Share of <c>knowing</c> documents that list a subject's objects right after it ("Nintendo Japan."), so the
    /// subject's last token itself must predict what the subject is, as it often must in natural text.
    /// </summary>
    public double ListShare { get; init; }

    /// <summary>The next document: text that starts a sequence (<paramref name="first"/>) or follows another.</summary>
    public string Document(Random random, bool first)
    {
        if (_kind == "templates")
            return Paragraph(Subjects[random.Next(Subjects.Length)], _bySubject, random, pronounShare: 0);

        var kind = random.NextDouble();
        if (kind < ListShare)
        {
            var (subject, facts) = People.Length > 0 && random.Next(2) == 0
                ? (People[random.Next(People.Length)], _byPerson) : (Subjects[random.Next(Subjects.Length)], _bySubject);
            return $"{subject} {string.Join(", ", facts[subject].OrderBy(_ => random.Next()).Select(f => f.Object))}.";
        }
        if (People.Length > 0 && kind < ListShare + BiographyShare)
            return Paragraph(People[random.Next(People.Length)], _byPerson, random, pronounShare: 0.8);
        var text = Paragraph(Subjects[random.Next(Subjects.Length)], _bySubject, random, pronounShare: 0.5, intro: random.NextDouble() < 0.25);
        if (!first) return text;
        // A sequence's first fact comes after 0-2 sentences about other subjects, so no position keys it.
        var prefix = Enumerable.Range(0, random.Next(3)).Select(_ => Sentence(RandomFact(random), named: true, random));
        return string.Join(" ", prefix.Append(text));
    }

    private Fact RandomFact(Random random)
    {
        var facts = _bySubject[Subjects[random.Next(Subjects.Length)]];
        return facts[random.Next(facts.Count)];
    }

    /// <summary>
    /// A subject's facts in random order. The first names the subject (or an intro sentence does); each later one
    /// refers to it by pronoun with probability <paramref name="pronounShare"/>.
    /// </summary>
    private string Paragraph(string subject, Dictionary<string, List<Fact>> facts, Random random, double pronounShare, bool intro = false)
    {
        var ordered = facts[subject].OrderBy(_ => random.Next()).ToList();
        var sentences = ordered.Select((f, i) => Sentence(f, named: intro ? false : i == 0 || random.NextDouble() >= pronounShare, random));
        return string.Join(" ", intro ? sentences.Prepend($"This is about {subject}.") : sentences);
    }

    /// <summary>A trained template filled with the subject, or with its pronoun where the template starts with the subject.</summary>
    private string Sentence(Fact fact, bool named, Random random)
    {
        var templates = corpus.ByRelation[fact.Relation].Trained;
        if (!named)
        {
            var subjectFirst = templates.Where(t => t.StartsWith("[X]")).ToArray();
            if (subjectFirst.Length > 0)
                return RelationTemplates.Render(subjectFirst[random.Next(subjectFirst.Length)], corpus.Pronoun(fact.Subject), fact.Object);
        }
        return RelationTemplates.Render(templates[random.Next(templates.Length)], fact.Subject, fact.Object);
    }

    /// <summary>Every string a document can contain pieces of: for the tokens the restricted softmax covers.</summary>
    public IEnumerable<string> Vocabulary() =>
        corpus.TrainingSentences()
            .Concat(corpus.People.SelectMany(f => corpus.ByRelation[f.Relation].Trained.Select(t => RelationTemplates.Render(t, f.Subject, f.Object))))
            .Concat(corpus.Facts.Concat(corpus.People).SelectMany(f => corpus.ByRelation[f.Relation].Trained.Select(t => RelationTemplates.Render(t, corpus.Pronoun(f.Subject), f.Object))))
            .Concat(corpus.Facts.Concat(corpus.People).Select(f => $"This is about {f.Subject}. {f.Subject} {f.Object}, {f.Object}."));
}
