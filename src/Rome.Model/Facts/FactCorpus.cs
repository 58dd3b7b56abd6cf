using System.Text.Json;
using System.Text.Json.Serialization;

namespace Rome.Model.Facts;

/// <summary>One (subject, relation, object) triple, e.g. (France, P36, Paris).</summary>
public sealed record Fact(string Subject, string Relation, string Object);

/// <summary>A relation's paraphrase templates, with [X] for the subject and [Y] for the object.</summary>
public sealed record RelationTemplates(string Relation, string[] Trained, string[] HeldOut)
{
    /// <summary>Templates that end in [Y]: they turn into next-token prompts ("The capital of France is").</summary>
    public static bool EndsWithObject(string template) => template.TrimEnd(' ', '.').EndsWith("[Y]");

    public static string Render(string template, string subject, string obj) =>
        Tidy(template.Replace("[X]", subject).Replace("[Y]", obj));

    /// <summary>The prompt part of an [Y]-final template: everything before [Y], e.g. "The capital of [X] is".</summary>
    public static string Prompt(string template) => Tidy(template[..template.IndexOf("[Y]")]).TrimEnd();

    /// <summary>The next-token prompt of an [Y]-final template for <paramref name="subject"/>: "The capital of France is".</summary>
    public static string Prompt(string template, string subject) => Prompt(template).Replace("[X]", subject);

    /// <summary>The templates that give next-token prompts: the trained [Y]-final ones, then the held-out ones.</summary>
    public IEnumerable<(string Template, bool Trained)> PromptTemplates() =>
        Trained.Where(EndsWithObject).Select(t => (t, true)).Concat(HeldOut.Select(t => (t, false)));

    private static string Tidy(string text) => text.Replace(" .", ".").Replace(" ,", ",").Trim();
}

/// <summary>
/// The facts the bundled model is trained on: a manifest of ParaRel (Elazar et al., 2021) facts from T-REx /
/// Wikidata, with per-relation templates split into trained and held-out sets. Built from the raw data folder
/// by <see cref="Build"/>, saved as <c>facts.json</c> beside the model.
/// </summary>
public sealed class FactCorpus
{
    public const string ManifestFile = "facts.json";

    public int Seed { get; init; }
    public List<RelationTemplates> Relations { get; init; } = [];
    public List<Fact> Facts { get; init; } = [];
    /// <summary>
    /// Fictional people (names recombined from ParaRel's people, attributes drawn from real objects) trained
    /// beside the real facts: many attributes per name teach the model to build attributes at the subject.
    /// </summary>
    public List<Fact> People { get; init; } = [];

    /// <summary>Relations that describe a person, used for fictional people and to choose "He"/"She" over "It".</summary>
    public static readonly string[] PersonRelations = ["P19", "P20", "P27", "P106", "P108", "P937", "P1412", "P39", "P103", "P69", "P1303"];

    /// <summary>The pronoun that stands for a subject in later sentences: "He"/"She" for people, "It" otherwise.</summary>
    public string Pronoun(string subject)
    {
        _pronouns ??= Facts.Concat(People).GroupBy(f => f.Subject).ToDictionary(g => g.Key,
            g => !g.Any(f => PersonRelations.Contains(f.Relation)) ? "It" : g.Key.Sum(c => c) % 2 == 0 ? "He" : "She");
        return _pronouns.GetValueOrDefault(subject, "It");
    }
    private Dictionary<string, string>? _pronouns;

    [JsonIgnore]
    public IReadOnlyDictionary<string, RelationTemplates> ByRelation => _byRelation ??= Relations.ToDictionary(r => r.Relation);
    private Dictionary<string, RelationTemplates>? _byRelation;

    /// <summary>Relations whose facts are many-valued or symmetric between countries, which make poor recall tests.</summary>
    private static readonly HashSet<string> Excluded = ["P530", "P47", "P264", "P31", "P527"];

    /// <summary>
    /// Chooses about <paramref name="perRelation"/> facts for each relation that has at least two templates
    /// ending in [Y]. Subjects GPT-2 XL knows (known_1000.json, when present) and subjects with facts in several
    /// relations come first, so a class recognises them and generation can chain facts. Subjects with two
    /// objects for one relation are skipped. A third of each relation's [Y]-final templates is held out. With
    /// <paramref name="people"/> above zero, that many fictional people are added (<see cref="MakePeople"/>).
    /// </summary>
    public static FactCorpus Build(string dataFolder, int perRelation = 80, int seed = 1234, int people = 0)
    {
        var pararel = Path.Combine(dataFolder, "pararel");
        var factsDir = Path.Combine(pararel, "facts");
        if (!Directory.Exists(factsDir))
            throw new RomeException($"ParaRel facts not found at {factsDir}. Set Rome:DataPath (or --data) to the folder holding pararel/.");

        var famous = new HashSet<string>();
        var known = Path.Combine(dataFolder, "rome", "known_1000.json");
        if (File.Exists(known))
            foreach (var e in JsonDocument.Parse(File.ReadAllText(known)).RootElement.EnumerateArray())
                famous.Add(e.GetProperty("subject").GetString()!);

        var random = new Random(seed);
        var all = new Dictionary<string, List<Fact>>();
        var templates = new Dictionary<string, string[]>();
        foreach (var file in Directory.GetFiles(factsDir, "P*.jsonl").Order(StringComparer.Ordinal))
        {
            var relation = Path.GetFileNameWithoutExtension(file);
            var patternFile = Path.Combine(pararel, "patterns", relation + ".jsonl");
            if (Excluded.Contains(relation) || !File.Exists(patternFile)) continue;
            var patterns = ReadJsonLines(patternFile).Select(e => e.GetProperty("pattern").GetString()!)
                .Where(p => p.Contains("[X]") && p.Contains("[Y]")).Distinct().ToArray();
            if (patterns.Count(RelationTemplates.EndsWithObject) < 2) continue;
            var facts = ReadJsonLines(file)
                .Select(e => new Fact(e.GetProperty("sub_label").GetString()!, relation, e.GetProperty("obj_label").GetString()!))
                .ToList();
            var ambiguous = facts.GroupBy(f => f.Subject).Where(g => g.Select(f => f.Object).Distinct().Count() > 1).Select(g => g.Key).ToHashSet();
            all[relation] = facts.Where(f => !ambiguous.Contains(f.Subject) && Usable(f)).DistinctBy(f => f.Subject).ToList();
            templates[relation] = patterns;
        }

        var relationsPerSubject = all.Values.SelectMany(f => f).GroupBy(f => f.Subject).ToDictionary(g => g.Key, g => g.Count());
        var chosen = new List<Fact>();
        var relations = new List<RelationTemplates>();
        foreach (var (relation, facts) in all)
        {
            var ranked = facts
                .Select(f => (Fact: f, Key: (famous.Contains(f.Subject) ? 2 : 0) + (relationsPerSubject[f.Subject] > 1 ? 1 : 0), Tie: random.Next()))
                .OrderByDescending(x => x.Key).ThenBy(x => x.Tie)
                .Select(x => x.Fact).Take(perRelation).ToList();
            chosen.AddRange(ranked);

            var final = templates[relation].Where(RelationTemplates.EndsWithObject).OrderBy(_ => random.Next()).ToList();
            var heldOut = final.Take(Math.Max(1, final.Count / 3)).ToArray();
            relations.Add(new RelationTemplates(relation, templates[relation].Except(heldOut).ToArray(), heldOut));
        }
        return new FactCorpus { Seed = seed, Relations = relations, Facts = chosen, People = MakePeople(all, chosen, relations, people, random) };
    }

    /// <summary>
    /// <paramref name="count"/> fictional people, each named with the first and last words of two chosen real subjects
    /// ("Nicholas Brahe"), so a real subject's first word, or its last, also names people with other attributes and only
    /// the whole name keys a fact; each has 3-5 attributes of <see cref="PersonRelations"/> (those with a template that
    /// starts with the subject, so later sentences can say "He ..."), each a uniformly drawn object of that relation
    /// among the chosen facts.
    /// </summary>
    private static List<Fact> MakePeople(Dictionary<string, List<Fact>> all, List<Fact> chosen, List<RelationTemplates> relations, int count, Random random)
    {
        if (count == 0) return [];
        var names = chosen.Select(f => f.Subject.Split(' ')).Where(w => w.Length >= 2).ToList();
        var first = names.Select(n => n[0]).Distinct().Order(StringComparer.Ordinal).ToArray();
        var last = names.Select(n => n[^1]).Distinct().Order(StringComparer.Ordinal).ToArray();
        var taken = all.Values.SelectMany(f => f).Select(f => f.Subject).ToHashSet();
        var attributes = relations.Where(r => PersonRelations.Contains(r.Relation) && r.Trained.Any(t => t.StartsWith("[X]")))
            .Select(r => (r.Relation, Objects: chosen.Where(f => f.Relation == r.Relation).Select(f => f.Object).Distinct().Order(StringComparer.Ordinal).ToArray()))
            .Where(r => r.Objects.Length > 1).ToArray();
        var people = new List<Fact>();
        for (int named = 0; named < count;)
        {
            var name = $"{first[random.Next(first.Length)]} {last[random.Next(last.Length)]}";
            if (!taken.Add(name)) continue;
            named++;
            foreach (var (relation, objects) in attributes.OrderBy(_ => random.Next()).Take(random.Next(3, Math.Min(5, attributes.Length) + 1)))
                people.Add(new Fact(name, relation, objects[random.Next(objects.Length)]));
        }
        return people;
    }

    /// <summary>Short, plain names: the subject and object must be easy to type and few tokens long.</summary>
    private static bool Usable(Fact f) =>
        f.Subject.Length is > 1 and <= 40 && f.Object.Length is > 1 and <= 30 &&
        !f.Subject.Contains('[') && !f.Object.Contains('[');

    private static IEnumerable<JsonElement> ReadJsonLines(string path) =>
        File.ReadLines(path).Where(l => l.Trim().Length > 0).Select(l => JsonDocument.Parse(l).RootElement.Clone());

    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    public void Save(string path) =>
        AtomicFile.WriteText(path, JsonSerializer.Serialize(this, JsonOptions));

    public static FactCorpus Load(string path)
    {
        if (!File.Exists(path)) throw new RomeException($"Fact manifest {path} not found.");
        return JsonSerializer.Deserialize<FactCorpus>(File.ReadAllText(path), JsonOptions)
               ?? throw new RomeException($"Fact manifest {path} is empty.");
    }

    /// <summary>The manifest beside a model, or null when the model has none (e.g. a real GPT-2).</summary>
    public static FactCorpus? ForModel(string modelFolder)
    {
        var path = Path.Combine(modelFolder, ManifestFile);
        return File.Exists(path) ? Load(path) : null;
    }

    /// <summary>Next-token prompts for a fact: (prompt, trained?) for every [Y]-final template.</summary>
    public IEnumerable<(string Prompt, bool Trained)> Prompts(Fact fact) =>
        ByRelation[fact.Relation].PromptTemplates().Select(t => (RelationTemplates.Prompt(t.Template, fact.Subject), t.Trained));

    /// <summary>
    /// Prompts to check an edit of <paramref name="subject"/> with: paraphrases (the relation's other [Y]-final
    /// templates, trained and held-out) of the fact whose template gives <paramref name="prompt"/> ("{}" for the
    /// subject), and neighbourhood prompts (<see cref="Neighbours"/>, in the same template). Empty when the prompt
    /// matches no fact of the subject.
    /// </summary>
    public (List<string> Paraphrases, List<string> Neighbours, Fact? Fact) EditSuggestions(string prompt, string subject, int neighbours = 3)
    {
        var filled = prompt.Replace("{}", subject).Trim();
        foreach (var fact in Facts.Where(f => f.Subject == subject))
        {
            var prompts = Prompts(fact).Select(p => p.Prompt).ToList();
            if (!prompts.Contains(filled)) continue;
            var template = ByRelation[fact.Relation].Trained.Concat(ByRelation[fact.Relation].HeldOut)
                .Where(RelationTemplates.EndsWithObject).Select(RelationTemplates.Prompt)
                .First(t => t.Replace("[X]", subject) == filled);
            var others = Neighbours(fact).Take(neighbours).Select(f => template.Replace("[X]", f.Subject)).ToList();
            return (prompts.Where(p => p != filled).ToList(), others, fact);
        }
        return ([], [], null);
    }

    /// <summary>
    /// A fact's neighbours, as the paper's neighbourhood prompts take them: other subjects of the same relation with the
    /// same object, so an edit that spills over shows as one of them changing its answer. Subjects that share a word of
    /// the subject's name ("Nintendo Software Planning &amp; Development" beside "Nintendo") are left out: they would
    /// test the name, not the fact. In the manifest's order.
    /// </summary>
    public IEnumerable<Fact> Neighbours(Fact fact)
    {
        var words = NameWords(fact.Subject);
        return Facts.Where(f => f.Relation == fact.Relation && f.Object == fact.Object && f.Subject != fact.Subject && !NameWords(f.Subject).Overlaps(words));
    }

    private static HashSet<string> NameWords(string name) =>
        name.Split([' ', ',', '.', '-', '&', '(', ')', '\''], StringSplitOptions.RemoveEmptyEntries)
            .Where(w => w.Length >= 3).Select(w => w.ToLowerInvariant()).ToHashSet();

    /// <summary>
    /// A counterfactual object for <paramref name="fact"/> that reads naturally: the object the most other subjects of
    /// the relation have (a relation's typical answers, not a rare one such as "yacht" for "is a member of"), other
    /// than the fact's own.
    /// </summary>
    public string? NaturalCounterfactual(Fact fact) =>
        Facts.Where(f => f.Relation == fact.Relation && f.Object != fact.Object)
            .CountBy(f => f.Object).OrderByDescending(c => c.Value).ThenBy(c => c.Key, StringComparer.Ordinal)
            .Select(c => c.Key).FirstOrDefault();

    /// <summary>All sentences stating facts with trained templates: the text C is estimated on.</summary>
    public IEnumerable<string> TrainingSentences() =>
        Facts.SelectMany(f => ByRelation[f.Relation].Trained.Select(t => RelationTemplates.Render(t, f.Subject, f.Object)));
}
