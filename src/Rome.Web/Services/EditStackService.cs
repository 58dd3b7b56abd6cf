using Microsoft.AspNetCore.Components.Forms;
using Rome.Model;
using Rome.Model.Editing;

namespace Rome.Web.Services;

/// <summary>A tab's stack of edits on its model: what the history shows, undo, redo, clear, export and import.</summary>
public sealed class EditStackService(UserSession user)
{
    /// <summary>Raised after the stack changed (an edit applied, undone, redone, cleared or imported).</summary>
    public event Action? Changed;

    public IReadOnlyList<AppliedEdit> Edits => user.ExistingEdits?.Edits ?? [];
    public bool CanUndo => user.ExistingEdits?.CanUndo ?? false;
    public bool CanRedo => user.ExistingEdits?.CanRedo ?? false;

    public void Undo() => Change(s => s.Undo());
    public void Redo() => Change(s => s.Redo());
    public void Clear() => Change(s => s.Clear());

    internal void NotifyChanged() => Changed?.Invoke();

    private long? _exported;

    /// <summary>Whether the tab holds edits that were not exported since they last changed (leaving would lose them).</summary>
    public bool Unsaved => user.ExistingEdits is { } s && s.Edits.Count > 0 && s.Version != _exported;

    /// <summary>The user took the export link: the edits as they are now are saved.</summary>
    public void MarkExported()
    {
        _exported = user.ExistingEdits?.Version;
        NotifyChanged();
    }

    private void Change(Action<EditSession> change)
    {
        change(user.Edits);
        NotifyChanged();
    }

    private (string Key, string Href)? _export;

    /// <summary>The current edits as a download link (a data URI of the exported file), or null when there are none; made once per state of the stack.</summary>
    public string? ExportLink()
    {
        if (Edits.Count == 0) return null;
        var key = $"{user.Host.Name}/{user.Edits.Version}";
        if (_export is { } e && e.Key == key) return e.Href;
        var file = Path.GetTempFileName();
        try
        {
            user.Edits.Export(file);
            _export = (key, "data:application/octet-stream;base64," + Convert.ToBase64String(File.ReadAllBytes(file)));
            return _export.Value.Href;
        }
        finally { File.Delete(file); }
    }

    /// <summary>Imports an exported edits file a user uploaded, all or nothing; a file that is not one is a <see cref="RomeException"/>.</summary>
    public async Task<int> ImportAsync(IBrowserFile upload, CancellationToken cancel = default)
    {
        var file = Path.GetTempFileName();
        try
        {
            await using (var stream = File.Create(file))
                await upload.OpenReadStream(maxAllowedSize: 64 * 1024 * 1024, cancel).CopyToAsync(stream, cancel);
            var count = user.Edits.Import(file, upload.Name);
            NotifyChanged();
            return count;
        }
        catch (Exception e) when (e is not RomeException and not OperationCanceledException)
        {
            throw new RomeException($"{upload.Name} could not be read as exported edits.", e);
        }
        finally { File.Delete(file); }
    }
}
