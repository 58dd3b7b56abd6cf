using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Rome.Model.Modeling;

/// <summary>Root-mean-square norm (Llama, Qwen2): x / rms(x) · weight, computed in float32.</summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly double _epsilon;

    public RmsNorm(int width, double epsilon) : base("RmsNorm")
    {
        weight = nn.Parameter(ones(width));
        _epsilon = epsilon;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var x32 = x.to(float32);
        var normed = x32 * (x32.pow(2).mean([-1], keepdim: true) + _epsilon).rsqrt();
        return (weight * normed.to(x.dtype)).MoveToOuterDisposeScope();
    }
}

/// <summary>A linear layer whose weight is stored [in, out] (GPT-2's "Conv1D"), so y = x W + b; the bias is optional.</summary>
public sealed class Conv1D : nn.Module
{
    /// <summary>The layer's GPT-2 name, e.g. <c>h.3.mlp.c_proj</c>; overlays target it.</summary>
    public string Path { get; }

    private readonly Parameter weight;
    private readonly Parameter? bias;

    public Conv1D(string path, int input, int output, bool hasBias = true) : base(path.Split('.')[^1])
    {
        Path = path;
        weight = nn.Parameter(empty(input, output));
        if (hasBias) bias = nn.Parameter(zeros(output));
        RegisterComponents();
    }

    public Tensor Weight => weight;
    public Tensor? Bias => bias;

    public Tensor Forward(Tensor x, Interventions iv)
    {
        var y = x.matmul(weight);
        if (bias is not null) y = y.add_(bias);
        foreach (var overlay in iv.Overlays)
            if (overlay.Module == Path) y = overlay.Apply(x, y);
        return y;
    }
}

/// <summary>The unembedding's own weight (an untied head) and bias (GPT-J).</summary>
public sealed class LmHead : nn.Module
{
    internal readonly Parameter? weight, bias;

    public LmHead(ModelConfig c) : base("lm_head")
    {
        if (!c.TiedEmbeddings) weight = nn.Parameter(empty(c.VocabSize, c.Embd));
        if (c.HeadBias) bias = nn.Parameter(zeros(c.VocabSize));
        RegisterComponents();
    }
}
