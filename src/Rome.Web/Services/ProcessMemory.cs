using System.Runtime.InteropServices;

namespace Rome.Web.Services;

/// <summary>
/// Giving memory back to the system. libtorch allocates its tensors with glibc's malloc, which keeps freed memory in
/// per-thread arenas (up to 8 per core) instead of returning it; the .NET GC keeps its heap after a peak. So a server
/// that once ran a large trace kept its peak for good. Two remedies, both no-ops off glibc:
/// <list type="bullet">
/// <item><see cref="LimitArenas"/> at start-up: few arenas, so freed blocks are reused rather than spread (the same as
/// MALLOC_ARENA_MAX=2, without relying on the environment);</item>
/// <item><see cref="GiveBack"/> when the server goes idle: a full GC (which also runs the finalizers of tensors a closed
/// tab left behind), then <c>malloc_trim</c>, which returns free pages to the system.</item>
/// </list>
/// </summary>
public static class ProcessMemory
{
    private const int M_ARENA_MAX = -8;

    [DllImport("libc", EntryPoint = "mallopt")] private static extern int MallOpt(int param, int value);
    [DllImport("libc", EntryPoint = "malloc_trim")] private static extern int MallocTrim(nuint pad);

    public static void LimitArenas(int arenas = 2) => Glibc(() => MallOpt(M_ARENA_MAX, arenas));

    private static long _afterLastGiveBack;

    /// <summary><see cref="GiveBack"/>, when resident memory has grown by <paramref name="threshold"/> bytes since the last time (cheap otherwise).</summary>
    public static void GiveBackIfGrown(long threshold = 64L << 20)
    {
        if (ResidentBytes() - Interlocked.Read(ref _afterLastGiveBack) < threshold) return;
        GiveBack();
        Interlocked.Exchange(ref _afterLastGiveBack, ResidentBytes());
    }

    public static void GiveBack()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect();
        Glibc(() => MallocTrim(0));
    }

    /// <summary>Resident memory of this process in bytes (0 where /proc is missing).</summary>
    public static long ResidentBytes()
    {
        try
        {
            var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("VmRSS:"));
            return line is null ? 0 : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }
        catch (IOException) { return 0; }
    }

    private static void Glibc(Func<int> call)
    {
        if (!OperatingSystem.IsLinux()) return;
        try { call(); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { } // musl or another libc: nothing to tune
    }
}
