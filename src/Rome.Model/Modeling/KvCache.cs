using static TorchSharp.torch;

namespace Rome.Model.Modeling;

/// <summary>Keys and values of earlier tokens, per layer, so generation feeds one new token at a time.</summary>
public sealed class KvCache(int layers) : IDisposable
{
    private readonly Tensor?[] _keys = new Tensor?[layers], _values = new Tensor?[layers];

    /// <summary>How many tokens the cache holds.</summary>
    public long Length { get; internal set; }

    /// <summary>A <see cref="Prefix"/>: forward passes attend to it but do not extend it.</summary>
    public bool ReadOnly { get; private init; }

    /// <summary>
    /// A read-only view of this cache's first <paramref name="length"/> tokens, so many forward passes can share
    /// them. A batch larger than the cache's repeats its rows: batch row r sees cache row r mod (cache rows).
    /// </summary>
    public KvCache Prefix(int length)
    {
        if (length < 1 || length > Length) throw new ArgumentOutOfRangeException(nameof(length));
        var view = new KvCache(_keys.Length) { Length = length, ReadOnly = true };
        for (int l = 0; l < _keys.Length; l++)
        {
            view._keys[l] = _keys[l]![.., .., ..length];
            view._values[l] = _values[l]![.., .., ..length];
        }
        return view;
    }

    internal (Tensor Keys, Tensor Values) Append(int layer, Tensor k, Tensor v)
    {
        if (ReadOnly)
        {
            Tensor Rows(Tensor past) => past.shape[0] == k.shape[0] ? past : past.repeat(k.shape[0] / past.shape[0], 1, 1, 1);
            return (cat([Rows(_keys[layer]!), k], 2), cat([Rows(_values[layer]!), v], 2));
        }
        var (oldK, oldV) = (_keys[layer], _values[layer]);
        var newK = oldK is null ? k.detach().clone() : cat([oldK, k.detach()], 2);
        var newV = oldV is null ? v.detach().clone() : cat([oldV, v.detach()], 2);
        _keys[layer] = newK.DetachFromDisposeScope();
        _values[layer] = newV.DetachFromDisposeScope();
        oldK?.Dispose();
        oldV?.Dispose();
        return (_keys[layer]!, _values[layer]!);
    }

    public void Dispose()
    {
        foreach (var t in _keys.Concat(_values)) t?.Dispose();
    }
}
