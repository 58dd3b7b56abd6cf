namespace Rome.Model;

/// <summary>
/// An error the user can cause and fix (bad input, a missing file, a bad checkpoint).
/// Its message is written for the user; the web and the CLI show it as it is, never a stack trace.
/// </summary>
public class RomeException(string message, Exception? inner = null) : Exception(message, inner);
