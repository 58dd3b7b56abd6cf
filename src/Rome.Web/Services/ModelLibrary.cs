using Rome.Model;

namespace Rome.Web.Services;

/// <summary>
/// The models the app offers (<see cref="RomeSettings.ModelChoices"/>), each a <see cref="ModelHost"/> that loads on
/// first use; a model that fails to load reports its error, and the others keep serving.
/// </summary>
public sealed class ModelLibrary : IDisposable
{
    public ModelLibrary(RomeSettings settings, ILogger<ModelHost> log) =>
        Hosts = settings.ModelChoices().Select(m => new ModelHost(m.Name, m.Folder, settings, log)).ToList();

    /// <summary>Every model, the default first.</summary>
    public IReadOnlyList<ModelHost> Hosts { get; }

    public ModelHost Default => Hosts[0];

    public ModelHost? Find(string name) => Hosts.FirstOrDefault(h => h.Name == name);

    public void Dispose()
    {
        foreach (var host in Hosts) host.Dispose();
    }
}
