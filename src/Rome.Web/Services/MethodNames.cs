namespace Rome.Web.Services;

/// <summary>How the pages name the editing methods and baselines.</summary>
public static class MethodNames
{
    private static readonly Dictionary<string, string> Names = new()
    {
        ["none"] = "Unedited", ["rome"] = "ROME", ["r-rome"] = "r-ROME", ["memit"] = "MEMIT", ["alphaedit"] = "AlphaEdit",
        ["ft"] = "Fine-tuning (FT)", ["ft-l"] = "Constrained fine-tuning (FT+L)", ["kn"] = "Knowledge neurons (KN)",
    };

    public static string Of(string method) => Names.GetValueOrDefault(method, method);
}
