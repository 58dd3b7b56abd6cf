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
    public IReadOnlyList<LowRankOverlay> Overlays { get { lock (_lock) return _applied.SelectMany(e => e.Overlays).ToList(); } }

    /// <summary>
    /// Copies of the current edits' overlays, owned by the caller (dispose them): a long job keeps the edits it started
    /// with whatever happens to the stack meanwhile.
    /// </summary>
    public IReadOnlyList<WeightOverlay> CopyOverlays()
    {
        lock (_lock) return _applied.SelectMany(e => e.Overlays).Select(o => o.Copy()).ToList();
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
        foreach (var file in new[] { "facts.json", RomeHyperParameters.FileName, MemitHyperParameters.FileName, "vocab.json", "merges.txt", "README.md", "loss.csv", "counterfact.json" })
            if (File.Exists(Path.Combine(lm.Folder, file))) File.Copy(Path.Combine(lm.Folder, file), Path.Combine(folder, file), overwrite: true);
    }

    /// <summary>
    /// Saves the edits as safetensors: per entry i and edited layer j, the factors <c>edit.i.j.u</c> [in, rank] and
    /// <c>edit.i.j.v</c> [out, rank] (and AlphaEdit's keys <c>edit.i.j.k</c>), with the requests, methods, layers and the
    /// model's fingerprint in the header metadata.
    /// </summary>
    public void Export(string path)
    {
        var edits = Edits;
        var tensors = new List<(string, Tensor)>();
        for (int i = 0; i < edits.Count; i++)
            for (int j = 0; j < edits[i].Overlays.Count; j++)
            {
                tensors.Add(($"edit.{i}.{j}.u", edits[i].Overlays[j].U));
                tensors.Add(($"edit.{i}.{j}.v", edits[i].Overlays[j].V));
                if (edits[i].Keys.Count > 0) tensors.Add(($"edit.{i}.{j}.k", edits[i].Keys[j]));
            }
        var metadata = new Dictionary<string, string>
        {
            ["format"] = "rome-edits",
            ["version"] = "2",
            ["model"] = lm.Fingerprint,
            ["model_name"] = lm.Name,
            ["edits"] = JsonSerializer.Serialize(edits.Select(e => new ExportedEdit(e.Method, e.Requests, e.Layers, e.Overlays.Select(o => o.Module).ToList(), e.TargetProbabilities, e.Keys.Count > 0)).ToList()),
        };
        AtomicFile.Write(path, temp => Checkpoint.WriteSafetensors(temp, tensors, metadata));
    }

    /// <summary>
    /// Loads exported edits onto this session (after any it has), all or nothing. The file must come from the same
    /// model, and every tensor is checked (names, count, shapes, finite values) before any of it reaches the model:
    /// a malformed file is refused with a message and leaves the session as it was. <paramref name="label"/> names
    /// the file in messages (e.g. the name a user uploaded, not a server path). Files of the first format (one ROME
    /// edit an entry, vectors <c>edit.i.u</c> and <c>edit.i.v</c>) still load.
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
            var firstFormat = !metadata.ContainsKey("version");
            List<ExportedEdit> edits;
            try
            {
                var text = metadata.GetValueOrDefault("edits") ?? "";
                edits = firstFormat
                    ? (JsonSerializer.Deserialize<List<FirstFormatEdit>>(text) ?? []).Select(e => e?.Request is null || e.Module is null ? null! : new ExportedEdit("rome", [e.Request], [e.Layer], [e.Module], [e.TargetProbability], false)).ToList()
                    : JsonSerializer.Deserialize<List<ExportedEdit>>(text) ?? [];
            }
            catch (JsonException) { throw new RomeException($"{label} has an unreadable list of edits."); }
            if (edits.Count == 0 || edits.Any(e => e?.Requests is not { Count: > 0 } || e.Requests.Any(r => r is null) || e.Modules is not { Count: > 0 } || e.Layers?.Count != e.Modules.Count || e.TargetProbabilities?.Count != e.Requests.Count))
                throw new RomeException($"{label} lists no complete edits.");
            var expected = edits.Sum(e => e.Modules.Count * (e.HasKeys ? 3 : 2));
            if (tensors.Count != expected)
                throw new RomeException($"{label} lists {edits.Count} edit(s) but holds {tensors.Count} tensor(s); it should hold {expected}.");
            for (int i = 0; i < edits.Count; i++)
            {
                var e = edits[i];
                var overlays = new List<LowRankOverlay>();
                var keys = new List<Tensor>();
                imported.Add(new AppliedEdit(e.Method, e.Requests, e.Layers, overlays, e.TargetProbabilities, 0, []) { Keys = keys });
                for (int j = 0; j < e.Modules.Count; j++)
                {
                    var name = firstFormat ? $"edit.{i}" : $"edit.{i}.{j}";
                    if (!tensors.TryGetValue($"{name}.u", out var u) || !tensors.TryGetValue($"{name}.v", out var v))
                        throw new RomeException($"{label} lacks the tensors of edit {i + 1}.");
                    if (firstFormat) (u, v) = (u.unsqueeze(1), v.unsqueeze(1));
                    var weight = lm.Model.Linear(e.Modules[j]).Weight;
                    var (input, output) = (weight.shape[0], weight.shape[1]);
                    if (u.dim() != 2 || v.dim() != 2 || u.shape[0] != input || v.shape[0] != output || u.shape[1] != v.shape[1])
                        throw new RomeException($"{label}: edit {i + 1} has factors of shape [{string.Join(", ", u.shape)}] and [{string.Join(", ", v.shape)}], but {e.Modules[j]} needs [{input}, r] and [{output}, r].");
                    overlays.Add(new LowRankOverlay(e.Modules[j], u.clone().to(lm.Device), v.clone().to(lm.Device)));
                    if (!e.HasKeys) continue;
                    if (!tensors.TryGetValue($"{name}.k", out var k) || k.dim() != 2 || k.shape[0] != input)
                        throw new RomeException($"{label}: edit {i + 1} lacks its keys for {e.Modules[j]}, or they are not [{input}, n].");
                    keys.Add(k.clone().to(lm.Device));
                }
            }
            lock (_lock)
            {
                if (imported.Any(n => _applied.Any(a => SameChange(a, n))))
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

    private static bool SameChange(AppliedEdit a, AppliedEdit b) =>
        a.Overlays.Count == b.Overlays.Count && a.Overlays.Zip(b.Overlays).All(p => p.First.Module == p.Second.Module
            && p.First.U.shape.SequenceEqual(p.Second.U.shape) && p.First.U.allclose(p.Second.U, 0, 0) && p.First.V.allclose(p.Second.V, 0, 0));

    private static string Shorten(string text) => text.Length <= 40 ? text : text[..40] + "...";

    public void Dispose() => Clear();

    private sealed record ExportedEdit(string Method, IReadOnlyList<EditRequest> Requests, IReadOnlyList<int> Layers, IReadOnlyList<string> Modules, IReadOnlyList<double> TargetProbabilities, bool HasKeys);
    private sealed record FirstFormatEdit(EditRequest Request, int Layer, string Module, double TargetProbability);
}
