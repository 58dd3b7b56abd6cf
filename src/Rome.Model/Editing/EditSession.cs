using System.Text.Json;
using Rome.Model.Modeling;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Rome.Model.Editing;

/// <summary>
/// One user's ordered stack of edits on a shared model, with undo and redo. The edits are overlays passed into
/// each forward pass (<see cref="Interventions"/>): the shared weights never change, so two sessions never see
/// each other's edits. Thread-safe for one writer and many readers.
/// </summary>
public sealed class EditSession(LanguageModel lm) : IDisposable
{
    private readonly List<AppliedEdit> _applied = [];
    private readonly Stack<AppliedEdit> _undone = new();
    private readonly Lock _lock = new();

    public LanguageModel Model => lm;

    public IReadOnlyList<AppliedEdit> Edits { get { lock (_lock) return _applied.ToList(); } }
    public bool CanUndo { get { lock (_lock) return _applied.Count > 0; } }
    public bool CanRedo { get { lock (_lock) return _undone.Count > 0; } }

    /// <summary>The current edits as overlays, in order.</summary>
    public IReadOnlyList<RankOneOverlay> Overlays { get { lock (_lock) return _applied.Select(e => e.Overlay).ToList(); } }

    /// <summary>Interventions that run the model with this session's edits.</summary>
    public Interventions Interventions() => new() { Overlays = Overlays };

    /// <summary>Computes and pushes an edit. A failed or cancelled edit leaves the stack as it was.</summary>
    public AppliedEdit Apply(RomeEditor editor, EditRequest request, Func<Tensor>? covariance,
                             IProgress<EditProgress>? progress = null, CancellationToken cancel = default)
    {
        var edit = editor.Compute(request, covariance, Overlays, progress, cancel);
        Push(edit);
        return edit;
    }

    public void Push(AppliedEdit edit)
    {
        lock (_lock)
        {
            _applied.Add(edit);
            while (_undone.TryPop(out var dropped)) dropped.Dispose();
        }
    }

    public AppliedEdit? Undo()
    {
        lock (_lock)
        {
            if (_applied.Count == 0) return null;
            var edit = _applied[^1];
            _applied.RemoveAt(_applied.Count - 1);
            _undone.Push(edit);
            return edit;
        }
    }

    public AppliedEdit? Redo()
    {
        lock (_lock)
        {
            if (!_undone.TryPop(out var edit)) return null;
            _applied.Add(edit);
            return edit;
        }
    }

    public void Clear()
    {
        lock (_lock)
        {
            foreach (var e in _applied.Concat(_undone)) e.Dispose();
            _applied.Clear();
            _undone.Clear();
        }
    }

    /// <summary>Writes the edited model (weights + every overlay, made dense) as a new checkpoint folder.</summary>
    public void Bake(string folder)
    {
        if (Path.GetFullPath(folder) == Path.GetFullPath(lm.Folder))
            throw new RomeException("Bake into a new folder: the loaded model's own files are never overwritten.");
        using var scope = NewDisposeScope();
        var deltas = new Dictionary<string, Tensor>();
        foreach (var o in Overlays)
            deltas[o.Module] = deltas.TryGetValue(o.Module, out var d) ? d + o.Dense() : o.Dense();
        Checkpoint.Save(lm.Model, folder, deltas);
        foreach (var file in new[] { "facts.json", RomeHyperParameters.FileName, "vocab.json", "merges.txt" })
            if (File.Exists(Path.Combine(lm.Folder, file))) File.Copy(Path.Combine(lm.Folder, file), Path.Combine(folder, file), overwrite: true);
    }

    /// <summary>
    /// Saves the edits as safetensors: u_i and v_i per edit, with the requests, layers and the model's fingerprint
    /// in the header metadata.
    /// </summary>
    public void Export(string path)
    {
        var edits = Edits;
        var tensors = new List<(string, Tensor)>();
        for (int i = 0; i < edits.Count; i++)
        {
            tensors.Add(($"edit.{i}.u", edits[i].Overlay.U));
            tensors.Add(($"edit.{i}.v", edits[i].Overlay.V));
        }
        var metadata = new Dictionary<string, string>
        {
            ["format"] = "rome-edits",
            ["model"] = lm.Fingerprint,
            ["edits"] = JsonSerializer.Serialize(edits.Select(e => new ExportedEdit(e.Request, e.Layer, e.Overlay.Module, e.TargetProbability)).ToList()),
        };
        Checkpoint.WriteAtomically(path, temp => Checkpoint.WriteSafetensors(temp, tensors, metadata));
    }

    /// <summary>Loads exported edits onto this session (after any it has). The file must come from the same model.</summary>
    public int Import(string path)
    {
        if (!File.Exists(path)) throw new RomeException($"Edits file {path} not found.");
        var metadata = Checkpoint.ReadMetadata(path);
        if (!metadata.TryGetValue("format", out var format) || format != "rome-edits")
            throw new RomeException($"{path} is not a Rome edits file.");
        if (metadata.GetValueOrDefault("model") != lm.Fingerprint)
            throw new RomeException($"{path} was made on another model (fingerprint {metadata.GetValueOrDefault("model")}); this one is {lm.Fingerprint}.");
        var edits = JsonSerializer.Deserialize<List<ExportedEdit>>(metadata["edits"]) ?? [];
        var tensors = Safetensors.LoadStateDict(path);
        for (int i = 0; i < edits.Count; i++)
        {
            var e = edits[i];
            lm.Model.Linear(e.Module); // the module must exist
            var overlay = new RankOneOverlay(e.Module, tensors[$"edit.{i}.u"].to(lm.Device), tensors[$"edit.{i}.v"].to(lm.Device));
            Push(new AppliedEdit(e.Request, e.Layer, overlay, e.TargetProbability, 0, []));
        }
        return edits.Count;
    }

    public void Dispose() => Clear();

    private sealed record ExportedEdit(EditRequest Request, int Layer, string Module, double TargetProbability);
}
