namespace Rome.Tests;

public class TorchTests
{
    [Fact]
    public void TorchInitialisesAndComputesWithGradients()
    {
        // Proves the GLIBCXX patch of libLibTorchSharp.so took effect: torch loads, multiplies, differentiates.
        using var scope = NewDisposeScope();
        var a = tensor(new float[] { 1, 2, 3, 4 }, requires_grad: true).reshape(2, 2);
        var b = a.matmul(a).sum();
        b.backward();
        Assert.Equal(54f, b.item<float>()); // [[1,2],[3,4]]^2 = [[7,10],[15,22]], sum 54
        var big = ones(512, 512).matmul(ones(512, 512));
        Assert.Equal(512f, big[0, 0].item<float>());
    }
}
