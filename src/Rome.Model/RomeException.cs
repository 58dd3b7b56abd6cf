namespace Rome.Model;

/// <summary>
/// An error the user can cause and fix (bad input, a missing file, a bad checkpoint).
/// Its message is written for the user; the web and the CLI show it as it is, never a stack trace.
/// </summary>
public class RomeException(string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>The same error said of one item of many: "row 3: the new target is empty."</summary>
    public RomeException Within(string where) => new($"{where}: {(Message.Length > 0 ? char.ToLowerInvariant(Message[0]) + Message[1..] : Message)}", this);
}
