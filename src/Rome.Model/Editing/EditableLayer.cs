using Rome.Model.Modeling;

namespace Rome.Model.Editing;

/// <summary>The one check of a layer an editor rewrites, or whose key statistics are gathered.</summary>
public static class EditableLayer
{
    /// <summary>A clear error unless block <paramref name="layer"/> exists and has an MLP for <paramref name="editor"/> to change.</summary>
    public static void Require(LanguageModel lm, int layer, string editor)
    {
        if (layer < 0 || layer >= lm.Layers) throw new RomeException($"Layer {layer} is out of range (0..{lm.Layers - 1}).");
        if (!lm.Model.HasMlp(layer))
            throw new RomeException($"Layer {layer} has no MLP (its weights are all zero), so {editor} has nothing to rewrite there; edit a layer with an MLP.");
    }
}
