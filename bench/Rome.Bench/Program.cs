using Rome.Bench;
using Rome.Cli;
using Rome.Model;

// rome-bench: speed figures (forward, trace, edit; run alone, in Release, and quote medians of several runs), and keys:
// why a large MEMIT batch breaks (the spread of its keys).
if (args.Length == 0 || args[0] is "help" or "--help" or "-h")
{
    Console.WriteLine("rome-bench forward [--batch B] [--tokens T] [--random SHAPE] | keys [--n 10,30,100,300,1000] [--model DIR] | trace [--repeats N] [--samples 10] [--kinds hidden,mlp,attn] [--skip-naive] [--random SHAPE] | edit [--repeats 3] [--random SHAPE] [--model DIR] [--json]");
    Console.WriteLine("SHAPE is gpt2-small (default), pythia-160m or qwen2.5-0.5b, with random weights (edit: or none, for the model alone).");
    return args.Length == 0 ? 1 : 0;
}
try
{
    return BenchCommands.Run(new CliArgs(args, ["json", "skip-naive"]), CancellationToken.None);
}
catch (RomeException e)
{
    Console.Error.WriteLine($"rome-bench: {e.Message}");
    return 2;
}
