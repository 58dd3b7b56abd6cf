// Rome's few browser-side helpers, called by the server over Blazor's JS interop.
window.rome = {
    // This tab's id, kept in sessionStorage: a reload or a link typed in the same tab keeps it, a new tab gets its own.
    // "left" says this page replaces one of the same tab that left (a reload or a link), whose connection may not be
    // closed yet; a duplicated tab copies the id but not that mark, since its original has not left.
    tab: function () {
        const id = sessionStorage.getItem("rome-tab") || rome.newTabId();
        const left = sessionStorage.getItem("rome-tab-left") === "1";
        sessionStorage.removeItem("rome-tab-left");
        return { id: id, left: left };
    },
    // A fresh id (also for a duplicated tab, which copies its original's sessionStorage).
    newTabId: function () {
        const bytes = crypto.getRandomValues(new Uint8Array(16)); // crypto.randomUUID needs https; a class may use http
        const id = Array.from(bytes, b => b.toString(16).padStart(2, "0")).join("");
        sessionStorage.setItem("rome-tab", id);
        return id;
    },
    // Ask before leaving while the tab holds edits that were not exported: closing the tab loses them.
    warnOnLeave: function (on) {
        window.onbeforeunload = on ? function (e) { e.preventDefault(); e.returnValue = ""; return ""; } : null;
    },
    // plotly.js (the copy Plotly.Blazor ships), loaded once per page by the first chart drawn; a failed load is tried
    // again by the next draw.
    plotlyLoading: null,
    plotly: function () {
        if (window.Plotly) return Promise.resolve();
        if (!rome.plotlyLoading) rome.plotlyLoading = new Promise((resolve, reject) => {
            const script = document.createElement("script");
            script.src = "_content/Plotly.Blazor/plotly-3.7.0.min.js";
            script.onload = resolve;
            script.onerror = () => { script.remove(); rome.plotlyLoading = null; reject(new Error("plotly.js did not load")); };
            document.head.appendChild(script);
        });
        return rome.plotlyLoading;
    },
    // Starts loading plotly.js, for a page whose charts are still to come (a follower's, before the teacher's trace).
    preloadPlotly: function () {
        rome.plotly().catch(() => { });
    },
    // Draws a whole figure in the chart element (Plotly.react: made, or redrawn in place). False when the element is gone.
    react: async function (id, data, layout, config) {
        await rome.plotly();
        const chart = document.getElementById(id);
        if (!chart) return false;
        await Plotly.react(chart, data, layout, config);
        return true;
    },
    // Replaces the values of a drawn chart's traces in place (Plotly.restyle): a streaming trace or v* curve sends only
    // its numbers, not the whole figure again. False when the chart is not drawn.
    restyle: function (id, update, traces) {
        const chart = document.getElementById(id);
        if (!window.Plotly || !chart || !chart.data) return false;
        return Plotly.restyle(chart, update, traces).then(() => true);
    },
    // Puts the fact a page shows into the address bar without navigating. Plotly points its gradients (the colour
    // bars) at url('<page address>#id'): they go blank when the address changes unless they follow it.
    replaceAddress: function (url) {
        const before = location.href.split("#")[0];
        history.replaceState(history.state, "", url);
        const after = location.href.split("#")[0];
        if (before === after) return;
        document.querySelectorAll(".js-plotly-plot [style*='url(']").forEach(el => {
            el.style.fill = el.style.fill.split(before + "#").join(after + "#");
        });
    },
};

window.addEventListener("pagehide", () => sessionStorage.setItem("rome-tab-left", "1"));
