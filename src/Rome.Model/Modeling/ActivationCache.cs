using static TorchSharp.torch;

namespace Rome.Model.Modeling;

/// <summary>Activations by hook point, from <see cref="DecoderModel.RunWithCache"/>.</summary>
public sealed class ActivationCache : IDisposable
{
    private readonly Dictionary<HookPoint, Tensor> _activations = new();

    public Tensor this[HookPoint point] => _activations.TryGetValue(point, out var t) ? t
        : throw new KeyNotFoundException($"{point} was not cached.");

    internal void Add(HookPoint point, Tensor activation) => _activations[point] = activation;

    /// <summary>Every cached activation.</summary>
    public IEnumerable<Tensor> Values => _activations.Values;

    public void Dispose()
    {
        foreach (var t in _activations.Values) t.Dispose();
    }
}
