using static TorchSharp.torch;

namespace Rome.Model.Modeling;

/// <summary>
/// How the tokens given to <see cref="DecoderModel.ForwardBlock"/> sit when they are not simply the next tokens of
/// one prompt: the causal trace packs several runs of a prompt's later tokens side by side in one sequence (see
/// <c>Tracing/CausalTrace</c>). Everything here is optional; with none of it a block attends causally after
/// <see cref="Prefix"/>.
/// </summary>
/// <param name="Prefix">Earlier tokens every run attends to (a read-only <see cref="KvCache.Prefix"/>).</param>
/// <param name="Positions">[tokens] int64: each token's position in the prompt (rotary angles, local windows); by default they follow the prefix.</param>
/// <param name="Mask">[tokens, prefix + tokens] bool: which keys each token sees; by default the whole prefix and the tokens up to itself.</param>
/// <param name="Outputs">Token indices: the block returns only these tokens ([batch, outputs, width]); every token still serves as a key and value.</param>
public sealed record PackedRuns(KvCache? Prefix = null, Tensor? Positions = null, Tensor? Mask = null, Tensor? Outputs = null);
