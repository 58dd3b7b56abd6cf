using Microsoft.Playwright;

namespace Rome.Web.Tests;

/// <summary>Screenshots the suite takes for the README (docs/screenshots).</summary>
public static class Screenshots
{
    public static string Folder
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "Rome.sln")))
                    return Directory.CreateDirectory(Path.Combine(dir.FullName, "docs", "screenshots")).FullName;
            return Path.GetTempPath();
        }
    }
}
