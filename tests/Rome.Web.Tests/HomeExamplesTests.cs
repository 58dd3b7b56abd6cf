using Microsoft.Playwright;

namespace Rome.Web.Tests;

/// <summary>Every example on the Home page opens an edit a class can learn from: neighbours to check, a target that reads naturally.</summary>
[Collection("web")]
[Trait("Speed", "Slow")] // a browser against the running app
public class HomeExamplesTests(WebAppFixture fixture) : BrowserTest(fixture)
{
    [Fact]
    public async Task EveryMakeItExampleOpensTheEditPageWithAtLeastThreeNeighbours()
    {
        var home = await app.OpenAsync("/");
        var links = await home.Locator("a[href^='/edit?']").EvaluateAllAsync<string[]>("links => links.map(a => a.getAttribute('href'))");
        Assert.Equal(6, links.Length);
        foreach (var link in links)
        {
            await home.GotoAsync(app.BaseUrl + link);
            await WebAppFixture.Interactive(home);
            var subject = await home.Locator("[data-testid=edit-subject]").InputValueAsync();
            var neighbours = (await home.Locator("[data-testid=edit-neighbours]").InputValueAsync())
                .Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.True(neighbours.Length >= 3, $"{link}: {neighbours.Length} neighbours");
            // Other subjects, none of which shares a word of this one's name.
            var words = subject.Split(' ').Where(w => w.Length >= 3).ToList();
            Assert.All(neighbours, n => Assert.DoesNotContain(words, w => n.Contains(w, StringComparison.OrdinalIgnoreCase)));
        }
    }
}
