using Microsoft.AspNetCore.Components;
using Microsoft.JSInterop;

namespace Rome.Web.Services;

/// <summary>
/// Puts the fact a page is showing into the address bar (without navigating), so a reload or a shared link opens
/// that fact rather than the one the page was opened with.
/// </summary>
public sealed class AddressBar(IJSRuntime js, NavigationManager nav)
{
    public void Show(Dictionary<string, object?> query) =>
        // Fire and forget: a closed tab or a prerender without a browser is not an error here.
        _ = js.InvokeVoidAsync("rome.replaceAddress", nav.GetUriWithQueryParameters(query)).AsTask().ContinueWith(_ => { });

    /// <summary>Takes parameters out of the address (a model switch must not re-run the last trace on a reload).</summary>
    public void Remove(params string[] names) => Show(names.ToDictionary(n => n, _ => (object?)null));
}
