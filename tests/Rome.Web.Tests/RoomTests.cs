using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Rome.Model;
using Rome.Web.Services;
using Rome.Web.Services.Class;

namespace Rome.Web.Tests;

/// <summary>Class rooms' rules, through the services the pages call (no model, no browser).</summary>
public sealed class RoomTests : IDisposable
{
    private readonly RomeSettings _settings = new() { ModelPath = "/nonexistent/model", MaxRoomMembers = 2 };
    private readonly ModelLibrary _library;
    private readonly RoomRegistry _rooms;
    private readonly List<UserSession> _tabs = [];

    public RoomTests()
    {
        _library = new ModelLibrary(_settings, NullLogger<ModelHost>.Instance);
        _rooms = new RoomRegistry(_settings);
    }

    /// <summary>A browser tab's view of the class room.</summary>
    private ClassService Tab()
    {
        var user = new UserSession(_library);
        _tabs.Add(user);
        return new ClassService(_rooms, user);
    }

    [Fact]
    public void CodesAreSevenUnambiguousCharacters_WithOver30BitsOfChance()
    {
        var codes = Enumerable.Range(0, 2000).Select(_ => RoomRegistry.NewCode()).ToList();
        Assert.All(codes, c => Assert.Matches("^[2-9A-HJKMNP-Z]{7}$", c));
        Assert.True(RoomRegistry.CodeLength * Math.Log2(RoomRegistry.Alphabet.Length) >= 30);
        Assert.True(codes.Distinct().Count() > 1990);
        Assert.Equal(31, RoomRegistry.Alphabet.Distinct().Count());
    }

    [Fact]
    public void StudentsJoinByTheCodeHoweverTyped_UpToTheRoomsSize()
    {
        var teacher = Tab();
        var room = teacher.Start();
        var ada = Tab().Join($" {room.Code[..3].ToLowerInvariant()}-{room.Code[3..]} ", "  Ada  ");
        Assert.Equal("Ada", ada.Name);
        var second = Tab().Join(room.Code, "");
        Assert.Equal("student 2", second.Name);
        Assert.Contains("full (2 students)", Assert.Throws<RomeException>(() => Tab().Join(room.Code, "Carl")).Message);
        Assert.Contains("no open room with the code ABCDEFG", Assert.Throws<RomeException>(() => Tab().Join("abcdefg", null)).Message);
        Assert.Contains("Type the room's code", Assert.Throws<RomeException>(() => Tab().Join(" ", null)).Message);
        Assert.Contains("leads that room", Assert.Throws<RomeException>(() => teacher.Join(room.Code, null)).Message);
    }

    [Fact]
    public void OnlyTheTeachersTabDrivesTheRoom()
    {
        var teacher = Tab();
        var room = teacher.Start();
        var student = Tab();
        student.Join(room.Code, "Mallory");
        Assert.False(student.IsTeacher);
        Assert.Contains("Only the room's teacher", Assert.Throws<RomeException>(() => student.Close()).Message);
        Assert.Contains("Only the room's teacher", Assert.Throws<RomeException>(() => _rooms.Close(room, "0123")).Message);
        Assert.Contains("Only the room's teacher", Assert.Throws<RomeException>(() => _rooms.Close(room, null)).Message);
        Assert.False(room.Closed);

        teacher.Close();
        Assert.True(room.Closed);
        Assert.Same(room, student.EndedRoom);
        Assert.Null(student.Room);
        Assert.Throws<RomeException>(() => Tab().Join(room.Code, null));   // an ended room takes nobody
    }

    [Fact]
    public async Task AQuestionToTheRoomsModel_IsCheckedBeforeItIsQueued()
    {
        var teacher = Tab();
        var room = teacher.Start();
        var user = new UserSession(_library);
        _tabs.Add(user);
        var student = new ClassService(_rooms, user);
        var queue = new JobQueue(_settings, NullLogger<JobQueue>.Instance);
        using var covariances = new Rome.Model.Editing.CovarianceCache(Path.GetTempPath());
        RoomEditService Asker(ClassService tab) => new(tab, new SessionJobs(user, queue), covariances);

        Assert.Contains("Join a room first", (await Assert.ThrowsAsync<RomeException>(() => Asker(student).AskAsync("Paris is"))).Message);
        student.Join(room.Code, "Ada");
        Assert.Contains("Type a prompt", (await Assert.ThrowsAsync<RomeException>(() => Asker(student).AskAsync("   "))).Message);
        Assert.Contains("longer than 200", (await Assert.ThrowsAsync<RomeException>(() => Asker(student).AskAsync(new string('a', 201)))).Message);
        Assert.Equal(0, queue.StartedCount(RoomEditService.AskLabel));
    }

    [Fact]
    public void FollowingIsCountedWhileAFollowedPageIsOpen_AndAClosedTabGivesItsPlaceBack()
    {
        var room = Tab().Start();
        var student = Tab();
        student.Join(room.Code, null);
        Assert.Equal(0, room.FollowingCount);
        var page = student.Follow();
        var again = student.Follow();   // the follow page open twice (a reload before the old page left)
        Assert.Equal(1, room.FollowingCount);
        page.Dispose();
        page.Dispose();
        Assert.Equal(1, room.FollowingCount);
        again.Dispose();
        Assert.Equal(0, room.FollowingCount);

        var tab = _tabs[^1];
        _tabs.Remove(tab);
        tab.Dispose();   // the tab is gone for good (no store to come back to)
        Assert.Empty(room.Members);
    }

    [Fact]
    public void AnIdleRoomEnds_AndItsStudentsAreTold()
    {
        var settings = new RomeSettings { ModelPath = "/nonexistent/model", RoomIdleMinutes = 0 };
        using var rooms = new RoomRegistry(settings);
        var teacher = new ClassService(rooms, new UserSession(_library));
        var student = new ClassService(rooms, new UserSession(_library));
        var room = teacher.Start();
        student.Join(room.Code, null);
        rooms.CloseIdle();
        Assert.True(room.Closed);
        Assert.Contains("without activity", student.EndedRoom!.ClosedReason);
        Assert.Equal(0, rooms.Count);
    }

    [Fact]
    [Trait("Speed", "Slow")] // starts the app once more with a low limit
    public async Task TheJoinPageIsRateLimitedPerAddress()
    {
        await using var factory = new WebApplicationFactory<Program>().WithWebHostBuilder(b => b.UseSetting("Rome:JoinsPerMinute", "3"));
        using var client = factory.CreateClient();
        var codes = new List<System.Net.HttpStatusCode>();
        for (int i = 0; i < 4; i++) codes.Add((await client.GetAsync("/join/ABCDEFG")).StatusCode);
        Assert.Equal([System.Net.HttpStatusCode.OK, System.Net.HttpStatusCode.OK, System.Net.HttpStatusCode.OK, System.Net.HttpStatusCode.TooManyRequests], codes);
        Assert.Equal(System.Net.HttpStatusCode.OK, (await client.GetAsync("/")).StatusCode);   // only joining is limited
    }

    public void Dispose()
    {
        foreach (var tab in _tabs) tab.Dispose();
        _rooms.Dispose();
        _library.Dispose();
    }
}
