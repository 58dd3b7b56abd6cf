using System.Text.Json;
using Rome.Model.Modeling;
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

    /// <summary>Counts the changes to the stack (push, undo, redo, clear): what a cache of results on this session's model keys on.</summary>
    public long Version { get { lock (_lock) return _version; } }
    private long _version;

    public IReadOnlyList<AppliedEdit> Edits { get { lock (_lock) return _applied.ToList(); } }
    public bool CanUndo { get { lock (_lock) return _applied.Count > 0; } }
    public bool CanRedo { get { lock (_lock) return _undone.Count > 0; } }

    /// <summary>The current edits as overlays, in order.</summary>
    public IReadOnlyList<RankOneOverlay> Overlays { get { lock (_lock) return _applied.Select(e => e.Overlay).ToList(); } }

    /// <summary>
    /// Copies of the current edits' overlays, owned by the caller (dispose them with <see cref="RankOneOverlay.Dispose"/>):
    /// a long job keeps the edits it started with whatever happens to the stack meanwhile.
    /// </summary>
    public IReadOnlyList<RankOneOverlay> CopyOverlays()
    {
        lock (_lock) return _applied.Select(e => e.Overlay with { U = e.Overlay.U.clone(), V = e.Overlay.V.clone() }).ToList();
    }

    /// <summary>Interventions that run the model with this session's edits.</summary>
    public Interventions Interventions() => new() { Overlays = Overlays };

    /// <summary>Computes and pushes an edit. A failed or cancelled edit leaves the stack as it was.</summary>
    public AppliedEdit Apply(RomeEditor editor, EditRequest request, Tensor? covariance,
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
            _version++;
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
            _version++;
            return edit;
        }
    }

    public AppliedEdit? Redo()
    {
        lock (_lock)
        {
            if (!_undone.TryPop(out var edit)) return null;
            _applied.Add(edit);
            _version++;
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
            _version++;
        }
    }

    /// <summary>
    /// Writes the edited model (weights + every overlay, made dense; with no edits, the model itself) as a new
    /// checkpoint folder, with the files that travel with a model (facts, hyper-parameters, card, CounterFact set).
    /// </summary>
    public void Bake(string folder, bool float16 = false)
    {
        if (Path.GetFullPath(folder) == Path.GetFullPath(lm.Folder))
            throw new RomeException("Bake into a new folder: the loaded model's own files are never overwritten.");
        using var scope = NewDisposeScope();
        var deltas = new Dictionary<string, Tensor>();
        foreach (var o in Overlays)
            deltas[o.Module] = deltas.TryGetValue(o.Module, out var d) ? d + o.Dense() : o.Dense();
        Checkpoint.Save(lm.Model, folder, deltas, float16);
        foreach (var file in new[] { "facts.json", RomeHyperParameters.FileName, "vocab.json", "merges.txt", "README.md", "loss.csv", "counterfact.json" })
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
            ["model_name"] = lm.Name,
            ["edits"] = JsonSerializer.Serialize(edits.Select(e => new ExportedEdit(e.Request, e.Layer, e.Overlay.Module, e.TargetProbability)).ToList()),
        };
        AtomicFile.Write(path, temp => Checkpoint.WriteSafetensors(temp, tensors, metadata));
    }

    /// <summary>
    /// Loads exported edits onto this session (after any it has), all or nothing. The file must come from the same
    /// model, and every tensor is checked (names, count, shapes, finite values) before any of it reaches the model:
    /// a malformed file is refused with a message and leaves the session as it was. <paramref name="label"/> names
    /// the file in messages (e.g. the name a user uploaded, not a server path).
    /// </summary>
    public int Import(string path, string? label = null)
    {
        label ??= Path.GetFileName(path);
        if (!File.Exists(path)) throw new RomeException($"Edits file {label} not found.");
        var (metadata, tensors) = Checkpoint.ReadTensorsChecked(path, label);
        var imported = new List<AppliedEdit>();
        try
        {
            if (metadata.GetValueOrDefault("format") != "rome-edits")
                throw new RomeException($"{label} is not a Rome edits file.");
            if (metadata.GetValueOrDefault("model") != lm.Fingerprint)
                throw new RomeException(metadata.GetValueOrDefault("model_name") is { Length: > 0 } made && made != lm.Name
                    ? $"{label} holds edits of another model, {Shorten(made)}, not of {lm.Name}: choose {Shorten(made)} in the model bar, then import it."
                    : $"{label} holds edits of another model (or of another version of {lm.Name}): they only apply to the weights they were made on.");
            List<ExportedEdit> edits;
            try { edits = JsonSerializer.Deserialize<List<ExportedEdit>>(metadata.GetValueOrDefault("edits") ?? "") ?? []; }
            catch (JsonException) { throw new RomeException($"{label} has an unreadable list of edits."); }
            if (edits.Count == 0 || edits.Any(e => e?.Request is null || e.Module is null))
                throw new RomeException($"{label} lists no complete edits.");
            if (tensors.Count != 2 * edits.Count)
                throw new RomeException($"{label} lists {edits.Count} edit(s) but holds {tensors.Count} tensor(s); it should hold {2 * edits.Count}.");
            for (int i = 0; i < edits.Count; i++)
            {
                var e = edits[i];
                var linear = lm.Model.Linear(e.Module);
                if (!tensors.TryGetValue($"edit.{i}.u", out var u) || !tensors.TryGetValue($"edit.{i}.v", out var v))
                    throw new RomeException($"{label} lacks the tensors of edit {i + 1}.");
                var (input, output) = (linear.Weight.shape[0], linear.Weight.shape[1]);
                if (!u.shape.SequenceEqual([input]) || !v.shape.SequenceEqual([output]))
                    throw new RomeException($"{label}: edit {i + 1} has vectors of shape [{string.Join(", ", u.shape)}] and [{string.Join(", ", v.shape)}], but {e.Module} needs [{input}] and [{output}].");
                imported.Add(new AppliedEdit(e.Request, e.Layer, new RankOneOverlay(e.Module, u.clone().to(lm.Device), v.clone().to(lm.Device)), e.TargetProbability, 0, []));
            }
            lock (_lock)
            {
                if (imported.Any(n => _applied.Any(a => a.Overlay.Module == n.Overlay.Module && a.Overlay.U.allclose(n.Overlay.U, 0, 0) && a.Overlay.V.allclose(n.Overlay.V, 0, 0))))
                    throw new RomeException($"The edits in {label} are already applied here; importing them again would apply them twice.");
                foreach (var edit in imported) Push(edit);
            }
            return imported.Count;
        }
        catch
        {
            foreach (var edit in imported) edit.Dispose();
            throw;
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    private static string Shorten(string text) => text.Length <= 40 ? text : text[..40] + "...";

    public void Dispose() => Clear();

    private sealed record ExportedEdit(EditRequest Request, int Layer, string Module, double TargetProbability);
}
