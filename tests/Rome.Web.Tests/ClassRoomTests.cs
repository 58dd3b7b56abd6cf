using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using Rome.Web.Services;

namespace Rome.Web.Tests;

/// <summary>A class room in real browsers: a teacher, followers who join by code or link, the trace computed once.</summary>
[Collection("web")]
[Trait("Speed", "Slow")] // browsers against the running app
public class ClassRoomTests(WebAppFixture fixture) : BrowserTest(fixture)
{
    private const string Prompt = "The headquarter of Nintendo is in";

    private async Task<(IPage Teacher, string Code)> StartRoom()
    {
        var teacher = await app.OpenAsync("/class");
        await teacher.Locator("[data-testid=room-start]").ClickAsync();
        var code = (await teacher.Locator("[data-testid=room-code]").InnerTextAsync()).Trim();
        Assert.Matches("^[2-9A-HJKMNP-Z]{7}$", code);   // no 0/O, 1/I/L
        return (teacher, code);
    }

    private async Task<IPage> JoinByLink(string code, string? name)
    {
        var student = await app.OpenAsync($"/join/{code}");
        if (name is not null) await student.Locator("[data-testid=join-name]").FillAsync(name);
        await student.Locator("[data-testid=join-submit]").ClickAsync();
        await student.Locator("[data-testid=room-joined]").WaitForAsync();
        return student;
    }

    private async Task Trace(IPage teacher)
    {
        await teacher.GotoAsync(app.BaseUrl + "/trace");
        await WebAppFixture.Interactive(teacher);
        await teacher.Locator("[data-testid=trace-prompt]").FillAsync(Prompt);
        await teacher.Locator("[data-testid=trace-subject]").FillAsync("Nintendo");
        await teacher.Locator("[data-testid=trace-samples]").FillAsync("3");   // what is shared matters here, not the precision
        await teacher.Locator("[data-testid=trace-run]").ClickAsync();
        await teacher.Locator("[data-testid=trace-answer][data-state=done]").WaitForAsync(new() { Timeout = 60_000 });
    }

    private static async Task<string?> FollowedCells(IPage student, string kind = "hidden")
    {
        var map = student.Locator($"[data-testid=room-follow] [data-testid=trace-heatmap-{kind}][data-state=done]");
        await map.WaitForAsync(new() { Timeout = 60_000 });
        return await map.GetAttributeAsync("data-cells");
    }

    [Fact]
    public async Task ATeacherLeadsThreeFollowers_TraceAndEditComputedOnce()
    {
        var (teacher, code) = await StartRoom();
        var ada = await JoinByLink(code, "Ada <b>");
        // The second types the code on the Home page, in lower case with a space.
        var second = await app.OpenAsync("/");
        await second.Locator("[data-testid=home-join-code]").FillAsync(code.ToLowerInvariant()[..3] + " " + code.ToLowerInvariant()[3..]);
        await second.Locator("[data-testid=home-join]").ClickAsync();
        await second.WaitForURLAsync("**/join/**");   // a page load: wait for the new page's circuit, not the old one's
        await WebAppFixture.Interactive(second);
        await second.Locator("[data-testid=join-submit]").ClickAsync();
        await second.Locator("[data-testid=room-joined]").WaitForAsync();
        var third = await JoinByLink(code, null);
        await third.ReloadAsync();   // a reload (or a dropped connection) keeps the seat
        await WebAppFixture.Interactive(third);
        await third.Locator("[data-testid=room-joined]").WaitForAsync();

        var members = teacher.Locator("[data-testid=room-members][data-count='3'][data-following='3']");
        await members.WaitForAsync();
        var names = await members.InnerTextAsync();
        Assert.Contains("Ada <b>", names);     // shown as text, never markup
        Assert.Contains("student 2", names);
        Assert.Contains("student 3", names);
        foreach (var student in new[] { ada, second, third })
            await student.Locator("[data-testid=follow-waiting]").WaitForAsync();

        var queue = app.Services.GetRequiredService<JobQueue>();
        var tracesBefore = queue.StartedCount(TraceService.Label);
        await Trace(teacher);   // the teacher's tab reloads onto /trace and still leads the room
        var teacherCells = await teacher.Locator("[data-testid=trace-heatmap-hidden]").GetAttributeAsync("data-cells");
        var teacherDrawn = await WebAppFixture.DrawnValues(teacher, "heatmap-Hidden");
        foreach (var student in new[] { ada, second, third })
        {
            Assert.Equal(teacherCells, await FollowedCells(student));
            Assert.Equal(teacherDrawn, await WebAppFixture.DrawnValues(student, "heatmap-Hidden"));   // the values streamed into the chart, every cell
            Assert.Contains("Kyoto", await student.Locator("[data-testid=room-follow] [data-testid=trace-answer]").InnerTextAsync());
            Assert.Contains(Prompt, await student.Locator("[data-testid=follow-prompt]").InnerTextAsync());
        }
        Assert.Equal(tracesBefore + 1, queue.StartedCount(TraceService.Label));   // computed once for the room
        await ada.ScreenshotAsync(new() { Path = Path.Combine(Screenshots.Folder, "class-follower.png"), FullPage = true });

        // The teacher's edit too: the same verdict and tables on every screen, computed once.
        var editsBefore = queue.StartedCount(EditService.Label);
        await teacher.GotoAsync(app.BaseUrl + "/edit?prompt=" + Uri.EscapeDataString("{} is located in") + "&subject=Nintendo&target=Germany");
        await WebAppFixture.Interactive(teacher);
        await teacher.Locator("[data-testid=edit-apply]").ClickAsync();
        await teacher.Locator("[data-testid=edit-after][data-state=done]").WaitForAsync(new() { Timeout = 120_000 });
        var verdict = await teacher.Locator("[data-testid=edit-verdict]").InnerTextAsync();
        foreach (var student in new[] { ada, second, third })
        {
            var screen = student.Locator("[data-testid=room-follow][data-showing=edit][data-state=done]");
            await screen.WaitForAsync(new() { State = WaitForSelectorState.Attached, Timeout = 60_000 });
            await screen.Locator("[data-testid=edit-after][data-state=done]").WaitForAsync();
            Assert.Equal(verdict, await screen.Locator("[data-testid=edit-verdict]").InnerTextAsync());
            Assert.Contains("Germany", await student.Locator("[data-testid=follow-prompt]").InnerTextAsync());
        }
        Assert.Equal(editsBefore + 1, queue.StartedCount(EditService.Label));
        await ada.ScreenshotAsync(new() { Path = Path.Combine(Screenshots.Folder, "class-follower-edit.png"), FullPage = true });

        // Ada explores on her own, then follows again with one click; the teacher sees the count change.
        await ada.Locator("[data-testid=room-explore]").ClickAsync();
        await ada.Locator("[data-testid=room-follow-again]").WaitForAsync();
        await teacher.Locator("[data-testid=room-banner][data-following='2']").WaitForAsync();
        await ada.Locator("[data-testid=room-follow-again]").ClickAsync();
        await ada.Locator("[data-testid=room-follow][data-showing=edit] [data-testid=edit-verdict]").WaitForAsync();
        await teacher.Locator("[data-testid=room-banner][data-following='3']").WaitForAsync();

        await teacher.GotoAsync(app.BaseUrl + "/class");
        await WebAppFixture.Interactive(teacher);
        await teacher.ScreenshotAsync(new() { Path = Path.Combine(Screenshots.Folder, "class-teacher.png"), FullPage = true });
        await teacher.Locator("[data-testid=room-close]").ClickAsync();
        foreach (var student in new[] { ada, second, third })
            await student.Locator("[data-testid=room-closed]").WaitForAsync();
        await teacher.Locator("[data-testid=room-start]").WaitForAsync();
    }

    [Fact]
    public async Task TwoRoomsAtOnce_AndAStudentsOwnTrace_StayApart()
    {
        var (first, firstCode) = await StartRoom();
        var (_, secondCode) = await StartRoom();
        Assert.NotEqual(firstCode, secondCode);
        var inFirst = await JoinByLink(firstCode, "Alan");
        var inSecond = await JoinByLink(secondCode, "Grace");
        var explorer = await JoinByLink(firstCode, "Edsger");

        // A student of the first room traces on their own: nobody else sees it.
        await explorer.Locator("[data-testid=room-explore]").ClickAsync();
        await explorer.Locator("[data-testid=trace-prompt]").FillAsync("Toyota is headquartered in");
        await explorer.Locator("[data-testid=trace-subject]").FillAsync("Toyota");
        await explorer.Locator("[data-testid=trace-run]").ClickAsync();
        await explorer.Locator("[data-testid=trace-answer][data-state=done]").WaitForAsync(new() { Timeout = 60_000 });
        await inFirst.Locator("[data-testid=follow-waiting]").WaitForAsync();

        await Trace(first);
        await FollowedCells(inFirst);
        Assert.Equal("waiting", await inSecond.Locator("[data-testid=room-follow]").GetAttributeAsync("data-state"));
        await inSecond.Locator("[data-testid=follow-waiting]").WaitForAsync();
    }

    private static async Task Propose(IPage student, string prompt, string subject, string target)
    {
        await student.Locator("[data-testid=submit-prompt]").FillAsync(prompt);
        await student.Locator("[data-testid=submit-subject]").FillAsync(subject);
        await student.Locator("[data-testid=submit-target]").FillAsync(target);
        await student.Locator("[data-testid=submit-send]").ClickAsync();
    }

    [Fact]
    public async Task TheClassWritesItsFactsIntoTheRoomsModel_AndNoTabsEdits()
    {
        var (teacher, code) = await StartRoom();
        var ada = await JoinByLink(code, "Ada");
        var alan = await JoinByLink(code, "Alan");
        var grace = await JoinByLink(code, "Grace");

        await Propose(ada, "The tower is located in", "Nowhere Land", "Paris");   // neither the subject nor {} in the prompt
        Assert.Contains("must contain the subject", await ada.Locator("[data-testid=submit-error]").InnerTextAsync());
        await Propose(ada, "The headquarter of {} is in", "David Suzuki Foundation", "London");
        await Propose(alan, "{} used to communicate in", "Aleksandr Kaleri", "<script>alert(1)</script>");
        await Propose(grace, "{} is produced by", "B-29 Superfortress", "Chrysler");
        await ada.Locator("[data-testid=submit-status][data-state=pending]").WaitForAsync();

        var rows = teacher.Locator("[data-testid=room-submissions][data-count='3'] tbody tr");
        await rows.First.WaitForAsync();
        Assert.Contains("<script>alert(1)</script>", await teacher.Locator("[data-testid=room-submissions]").InnerTextAsync());   // text, not markup
        await rows.Nth(0).Locator("[data-testid=submission-accept]").ClickAsync();
        await rows.Nth(1).Locator("[data-testid=submission-reject]").ClickAsync();
        await rows.Nth(2).Locator("[data-testid=submission-accept]").ClickAsync();
        await alan.Locator("[data-testid=submit-status][data-state=rejected]").WaitForAsync();
        await ada.Locator("[data-testid=submit-status][data-state=accepted]").WaitForAsync();

        await teacher.Locator("[data-testid=room-apply]").ClickAsync();
        await teacher.Locator("[data-testid=room-apply-job][data-state=done]").WaitForAsync(new() { State = WaitForSelectorState.Attached, Timeout = 120_000 });
        foreach (var member in new[] { teacher, ada, alan, grace })
        {
            var batch = member.Locator("[data-testid=room-batch][data-facts='2']");
            await batch.WaitForAsync();
            Assert.Equal("2", await batch.GetAttributeAsync("data-took"));
            var text = await batch.InnerTextAsync();
            Assert.Contains("MEMIT", text);
            Assert.Contains("retention", text);
        }
        await ada.ScreenshotAsync(new() { Path = Path.Combine(Screenshots.Folder, "class-batch.png"), FullPage = true });

        // Any member asks the room's model: it continues with the class's fact, the model before the batch with its own.
        await grace.Locator("[data-testid=room-ask-prompt]").FillAsync("The headquarter of David Suzuki Foundation is in");
        await grace.Locator("[data-testid=room-ask-send]").ClickAsync();
        await grace.Locator("[data-testid=room-ask-answer]").WaitForAsync(new() { Timeout = 60_000 });
        Assert.Contains("Vancouver", await grace.Locator("[data-testid=room-ask-before]").InnerTextAsync());
        Assert.Contains("London", await grace.Locator("[data-testid=room-ask-after]").InnerTextAsync());

        // The room's model changed; Ada's own model did not.
        await ada.Locator("[data-testid=room-explore]").ClickAsync();
        await ada.Locator("[data-testid=trace-prompt]").FillAsync("The headquarter of David Suzuki Foundation is in");
        await ada.Locator("[data-testid=trace-subject]").FillAsync("David Suzuki Foundation");
        await ada.Locator("[data-testid=trace-run]").ClickAsync();
        await ada.Locator("[data-testid=trace-answer][data-state=done]").WaitForAsync(new() { Timeout = 60_000 });
        Assert.Contains("Vancouver", await ada.Locator("[data-testid=trace-answer]").InnerTextAsync());
        // ... and she can trace the room's model, which says the class's fact.
        await ada.Locator("[data-testid=trace-room-model]").ClickAsync();
        await ada.Locator("[data-testid=trace-run]").ClickAsync();
        await ada.Locator("[data-testid=trace-answer][data-state=done]", new() { HasText = "London" }).WaitForAsync(new() { Timeout = 60_000 });
        Assert.Contains("class room's model", await ada.Locator("[data-testid=trace-model]").InnerTextAsync());

        await teacher.Locator("[data-testid=room-undo]").ClickAsync();
        await teacher.Locator("[data-testid=room-edits][data-count='0']").WaitForAsync(new() { State = WaitForSelectorState.Attached });
        await grace.Locator("[data-testid=room-batch]").WaitForAsync(new() { State = WaitForSelectorState.Detached });
    }

    [Fact]
    public async Task APoll_ThenTheTraceRevealedBesideTheGuesses()
    {
        var (teacher, code) = await StartRoom();
        var students = new[] { await JoinByLink(code, "Ada"), await JoinByLink(code, "Alan"), await JoinByLink(code, "Grace") };
        await teacher.Locator("[data-testid=poll-open]").ClickAsync();   // the prompt and subject the panel suggests: Nintendo
        var guesses = new[] { (4, 3), (4, 3), (6, 6) };
        for (int i = 0; i < students.Length; i++)
        {
            var cell = students[i].Locator($"[data-testid=poll-cell][data-token='{guesses[i].Item1}'][data-layer='{guesses[i].Item2}']");
            await cell.ClickAsync();
            await students[i].Locator($"[data-testid=poll-cell][data-mine=yes][data-token='{guesses[i].Item1}']").WaitForAsync();
        }
        await teacher.Locator("[data-testid=poll-results][data-votes='3']").WaitForAsync();
        await teacher.Locator("[data-testid=poll-reveal]").ClickAsync();
        foreach (var student in students)
        {
            await FollowedCells(student);
            var results = student.Locator("[data-testid=poll-results][data-votes='3']");
            await results.WaitForAsync();
            Assert.Equal("2", await results.Locator("tbody tr").Nth(4).Locator("td").Nth(3).GetAttributeAsync("data-count"));
        }
        await teacher.Locator("[data-testid=trace-heatmap-hidden][data-state=done]").WaitForAsync(new() { Timeout = 60_000 });   // beside the guesses on the teacher's screen too
        await students[0].ScreenshotAsync(new() { Path = Path.Combine(Screenshots.Folder, "class-poll.png"), FullPage = true });
    }

    [Fact]
    public async Task AStudentsTabCannotDriveTheRoom_NotEvenOnTheTeachersPage()
    {
        var (teacher, code) = await StartRoom();
        var mallory = await JoinByLink(code, "Mallory");
        await Propose(mallory, "{} is produced by", "B-29 Superfortress", "Chrysler");
        await teacher.Locator("[data-testid=room-submissions][data-count='1']").WaitForAsync();
        // The teacher's page, typed into the student's tab, with whatever the student adds to the address: it offers
        // a room of her own, never this room's controls (the teacher's key lives in the teacher's tab on the server,
        // in no page and no link).
        foreach (var address in new[] { "/class", $"/class?code={code}&teacher=1&key={code}" })
        {
            await mallory.GotoAsync(app.BaseUrl + address);
            await WebAppFixture.Interactive(mallory);
            await mallory.Locator("[data-testid=room-start]").WaitForAsync();
            foreach (var control in new[] { "room-code", "room-close", "submission-accept", "room-apply", "poll-open" })
                Assert.Equal(0, await mallory.Locator($"[data-testid={control}]").CountAsync());
        }
        // The room goes on as the teacher left it: Mallory is in it, and her fact waits for the teacher.
        await teacher.Locator("[data-testid=room-members][data-count='1']").WaitForAsync(new() { State = WaitForSelectorState.Attached });
        await teacher.Locator("[data-testid=room-submissions][data-count='1'] [data-testid=submission-accept]").WaitForAsync();
    }

    [Fact]
    public async Task AWrongCode_IsRefusedPlainly()
    {
        var student = await app.OpenAsync("/join/ZZZZ999");
        await student.Locator("[data-testid=join-submit]").ClickAsync();
        Assert.Contains("no open room with the code ZZZZ999", await student.Locator("[data-testid=join-error]").InnerTextAsync());
    }
}
