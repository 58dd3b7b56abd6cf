using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Rome.Model.Modeling;

/// <summary>
/// Rotary position embeddings: each pair of a head's first <see cref="ModelConfig.RotaryDims"/> dimensions is turned
/// by an angle proportional to the token's position. Pairs are halves (dimension i with i + d/2, NeoX and Llama's
/// rotate_half) or neighbours (2i with 2i + 1, GPT-J's rotate_every_two).
/// </summary>
public sealed class Rotary
{
    private readonly int _dims;
    private readonly bool _interleaved;
    private readonly double _base, _scale;

    public Rotary(ModelConfig c) => (_dims, _interleaved, _base, _scale) = (c.RotaryDims, c.RotaryInterleaved, c.RotaryBase, c.RotaryScale);

    /// <summary>The cosines and sines of the tokens' <paramref name="positions"/> ([tokens]), computed once per forward pass for every layer.</summary>
    public Rotation At(Tensor positions, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var inverse = (arange(0, _dims, 2, dtype: float64, device: positions.device) * (-Math.Log(_base) / _dims)).exp(); // base^(-2i/d)
        var angles = (positions.to(float64) / _scale).unsqueeze(1) * inverse.unsqueeze(0); // [tokens, dims / 2]
        angles = _interleaved ? angles.repeat_interleave(2, dim: 1) : cat([angles, angles], 1);
        return new Rotation(angles.cos().to(dtype).MoveToOuterDisposeScope(), angles.sin().to(dtype).MoveToOuterDisposeScope(), _dims, _interleaved);
    }
}

/// <summary>Rotary angles for some tokens ([tokens, dims]), ready to turn queries and keys.</summary>
public sealed record Rotation(Tensor Cos, Tensor Sin, int Dims, bool Interleaved)
{
    /// <summary>Turns <paramref name="x"/> ([batch, heads, tokens, head size]).</summary>
    public Tensor Apply(Tensor x)
    {
        var (turned, rest) = (x[.., .., .., ..Dims], x[.., .., .., Dims..]);
        var result = turned * Cos + Partner(turned) * Sin;
        return rest.shape[^1] == 0 ? result : cat([result, rest], -1);
    }

    /// <summary>Each dimension's partner in its pair, with the sign the rotation needs: (-x₂, x₁).</summary>
    private Tensor Partner(Tensor x)
    {
        if (Interleaved)
            return stack([-x.slice(-1, 1, Dims, 2), x.slice(-1, 0, Dims, 2)], -1).flatten(-2);
        var halves = x.chunk(2, dim: -1);
        return cat([-halves[1], halves[0]], -1);
    }
}
