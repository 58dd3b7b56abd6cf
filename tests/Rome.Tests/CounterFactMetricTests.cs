namespace Rome.Tests;

public class CounterFactMetricTests
{
    [Fact]
    public void ComparisonsAndTheHarmonicMeanMatchHandComputedValues()
    {
        var (success, magnitude) = CounterFactMetrics.Compare([1, 3], [2, 2]);
        Assert.Equal(0.5, success);
        Assert.Equal(((Math.Exp(-1) - Math.Exp(-2)) + (Math.Exp(-3) - Math.Exp(-2))) / 2, magnitude, 12);
        Assert.Equal(60, CounterFactMetrics.HarmonicMean(100, 50, 50), 10);
        Assert.Equal(0, CounterFactMetrics.HarmonicMean(100, 0, 50));
    }

    [Fact]
    public void SummaryAveragesPerCaseThenOverCases_Times100()
    {
        var cases = new[]
        {
            new CaseScores(0, 1, 0.5, 1, 0.2, 0.5, 0.1, 1, null, 4.0, 0.2),
            new CaseScores(1, 0, -0.5, 0.5, 0.0, 1, 0.3, 0, null, 5.0, 0.4),
        };
        var s = CounterFactMetrics.Summarise("rome", cases);
        Assert.Equal(50, s.ES, 10);
        Assert.Equal(75, s.PS, 10);
        Assert.Equal(75, s.NS, 10);
        Assert.Equal(0, s.EM, 10);
        Assert.Equal(CounterFactMetrics.HarmonicMean(50, 75, 75), s.S, 10);
        Assert.Equal(450, s.GE!.Value, 10);   // x100 like every other metric, as summarize.py does
        Assert.Equal(30, s.RS!.Value, 10);
        Assert.Null(s.PSHeldOut);
    }

    [Fact]
    public void NGramEntropyMatchesAHandComputation()
    {
        // "a b a b": bigrams {ab: 2, ba: 1} -> H2 = 0.9183 bits; trigrams {aba, bab} -> H3 = 1 bit.
        var h2 = -(2 / 3.0 * Math.Log2(2 / 3.0) + 1 / 3.0 * Math.Log2(1 / 3.0));
        Assert.Equal((2.0 / 3 * h2 + 4.0 / 3 * 1) / 2, CounterFactMetrics.NGramEntropy("a b a b"), 10);
        Assert.Equal(0, CounterFactMetrics.NGramEntropy("word"));
    }

    [Fact]
    public void ConsistencyComparesWithTextsAboutTheSameRelationAndObject()
    {
        var corpus = new FactCorpus
        {
            Relations = [new("P17", ["[X] is located in [Y] ."], []), new("P1412", ["[X] speaks [Y] ."], [])],
            Facts = [new("Kyoto", "P17", "Japan"), new("Osaka", "P17", "Japan"), new("Taro Aso", "P1412", "Japan"), new("Lyon", "P17", "France")],
        };
        var (tfidf, reference) = CounterFactMetrics.ConsistencyReference(corpus);
        Assert.Equal("Kyoto is located in Japan. Osaka is located in Japan.", reference("P17", "Japan"));   // not Taro Aso's
        Assert.Equal("Taro Aso speaks Japan.", reference("P1412", "Japan"));
        Assert.True(tfidf.Similarity("Kyoto and Osaka", reference("P17", "Japan")) > tfidf.Similarity("Kyoto and Osaka", reference("P1412", "Japan")));
    }

    [Fact]
    public void TfIdfMatchesScikitLearnsDefaults()
    {
        // Fitted on three documents; "a" is one character, so scikit-learn's token pattern drops it.
        // Tokens: {the, cat, sat}, {the, dog, sat, down}, {cat}: n = 3, df(the) = df(cat) = df(sat) = 2, df(dog) = df(down) = 1.
        var tfidf = new TfIdf(["The cat sat.", "the dog sat down", "a cat"]);
        var idf2 = Math.Log(4.0 / 3) + 1;   // smooth IDF ln((1+n)/(1+df)) + 1 with df = 2
        var idf1 = Math.Log(4.0 / 2) + 1;   // df = 1

        // "the cat" = (idf2, idf2) / norm; "a zebra cat" = (cat) alone: "a" is too short, "zebra" is outside the vocabulary.
        Assert.Equal(1 / Math.Sqrt(2), tfidf.Similarity("the cat", "a zebra cat"), 10);
        // Counts multiply the IDF: "dog dog sat" = (2 idf1, idf2); against "dog" alone the cosine is 2 idf1 / |(2 idf1, idf2)|.
        Assert.Equal(2 * idf1 / Math.Sqrt(4 * idf1 * idf1 + idf2 * idf2), tfidf.Similarity("dog dog sat", "dog"), 10);
        // Nothing in the vocabulary: a zero vector, similarity 0 (scikit-learn's cosine of a zero row is 0).
        Assert.Equal(0, tfidf.Similarity("a b c", "the cat"));
    }

    [Fact]
    public void TargetNllIsTheMeanPerTokenNegativeLogProbability()
    {
        using var lm = LanguageModel.Load(TestPaths.Fixture("gpt2-random"));
        var nll = TargetProbability.Nll(lm, ["The capital of France is", "Hello"], "Saint Petersburg", Interventions.None);
        var target = lm.Tokenizer.Encode(" Saint Petersburg");
        var ids = lm.Encode("The capital of France is").ToList();
        double sum = 0;
        foreach (var t in target)
        {
            using var lp = lm.NextTokenLogProbs(ids);
            sum -= lp[t].item<float>();
            ids.Add(t);
        }
        Assert.Equal(sum / target.Length, nll[0], 4);
        Assert.Equal(2, nll.Length);
    }

    [Fact]
    public void TheEditPageAndCounterFactReportOneProbability_LabelledPerTokenForLongTargets()
    {
        using var lm = LanguageModel.Load(TestPaths.Fixture("gpt2-random"));
        var request = new EditRequest("{} is in", "France", "Saint Petersburg", "Paris");
        var prompts = new List<(string, string)> { ("prompt", request.Filled), ("neighbour", "Spain is in") };
        var report = EditComparison.Measure(lm, Interventions.None, request, prompts, generationTokens: 2);
        var nll = TargetProbability.Nll(lm, [request.Filled, "Spain is in"], "Saint Petersburg", Interventions.None);
        Assert.Equal(Math.Exp(-nll[0]), report.Prompts[0].NewTarget, 10);
        Assert.Equal(Math.Exp(-nll[1]), report.Prompts[1].NewTarget, 10);
        Assert.Equal("p(Saint Petersburg) per token", report.NewLabel);   // two tokens: the geometric mean per token
        // The prompt's answer to lose is the old target, one token: its probability. A neighbour's is its own top-1.
        Assert.Equal("Paris", report.Prompts[0].Answer);
        using var logProbs = lm.NextTokenLogProbs(lm.Encode(request.Filled));
        Assert.Equal(Math.Exp(logProbs[lm.Tokenizer.Encode(" Paris")[0]].item<float>()), report.Prompts[0].AnswerProbability!.Value, 5);
        Assert.Equal(report.Prompts[1].Top[0].Text.Trim(), report.Prompts[1].Answer);
    }
}
