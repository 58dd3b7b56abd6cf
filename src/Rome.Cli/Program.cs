using Rome.Cli;
using Rome.Cli.Commands;
using Rome.Model;

// rome: the command-line front end. Each command is a thin shell over a Rome.Model service.
var commands = new Dictionary<string, (string Help, Func<CliArgs, CancellationToken, int> Run, string[] Flags)>
{
    ["info"] = ("info [--model DIR] [--json]: architecture, parameters, layers, vocabulary", ModelCommands.Info, ["json"]),
    ["export"] = ("export [--model DIR] --out DIR [--dtype float32|float16]: copy a model folder, its weights as float16 if asked (half the size)", ModelCommands.Export, []),
    ["predict"] = ("predict [--model DIR] (--prompt TEXT | --ids 1,2,3) [--top K] [--json]: next-token distribution", ModelCommands.Predict, ["json"]),
    ["generate"] = ("generate [--model DIR] --prompt TEXT [--max-tokens N] [--top-k K] [--seed S] [--json]", ModelCommands.Generate, ["json"]),
    ["trace"] = ("trace [--model DIR] --prompt TEXT --subject TEXT [--kind hidden|mlp|attn|all] [--samples 10] [--noise 3s|FLOAT] [--window W] [--seed S] [--sever] [--corrupt noise|str] [--metric prob|logprob|logit-diff] [--direction denoise|noise] [--method patch|attribution [--agreement]] [--json|--csv]: causal trace; --sever adds the paper's Figure 4 for this fact (the hidden state traced again with the later MLPs, then attention, frozen); --corrupt str replaces the subject by other subjects of as many tokens, --direction noise corrupts one state in the clean run, --method attribution estimates the grids from gradients (--agreement: against real patching)", TraceCommands.Trace, ["json", "csv", "sever", "agreement"]),
    ["localize"] = ("localize [--model DIR] --sweep DIR [--samples 10] [--noise 3s|FLOAT] [--out DIR]: does localisation inform editing? Per case of a layer sweep (rome eval --method rome --layers all --out DIR), the layer where the trace's MLP effect peaks beside the layer where ROME's edit scores best, and their rank correlation", TraceCommands.Localize, []),
    ["trace-avg"] = ("trace-avg [--model DIR] [--facts FILE] [--n 100] [--samples 10] [--noise 3s|FLOAT] [--corrupt noise|str] [--metric prob|logprob|logit-diff] [--direction denoise|noise] [--method patch|attribution [--agreement]] [--out DIR] [--severed] [--save] [--json]: average indirect effects over known facts, the two sites as fractions of TE, and with --severed the paper's Figure 4 (MLP or attention severed); --save keeps it beside the model for the web app's Trace page; the trace's options as in trace", TraceCommands.TraceAverage, ["json", "severed", "save", "agreement"]),
    ["edit"] = ("edit [--model DIR] --prompt \"{} is a citizen of\" --subject S --target T [--old-target T] [--method rome|r-rome] [--key original|consistent] [--layer L] [--hparams FILE] [--paraphrase P]... [--neighbor P]... [--corpus PATH] [--identity-covariance] [--load-edits FILE] [--save-edits FILE] [--bake DIR] [--json]: rewrite a fact with ROME (r-ROME: one key throughout)\n  rome edit [--model DIR] --method rome|r-rome|memit|alphaedit --requests FILE.json|FILE.csv [--sequential [--batch B]] [--layers 3,4] [--memit-hparams FILE] [--corpus PATH] [--identity-covariance] [--load-edits FILE] [--save-edits FILE] [--bake DIR] [--json]: write many facts, all at once or B at a time", EditCommands.Edit, ["json", "identity-covariance", "sequential"]),
    ["stats"] = ("stats [--model DIR] --layer L [--corpus PATH] [--samples N]: build and cache C = E[k kᵀ] for a layer", EditCommands.Stats, []),
    ["counterfact"] = ("counterfact build [--model DIR] [--n 1000] [--seed S] [--out FILE]: a CounterFact-format set from the model's facts", EvalCommands.Build, []),
    ["eval"] = ("eval [--model DIR] [--dataset FILE|bundled] [--method none|rome|ft|ft-l|kn] [--n N] [--layer L | --layers all|0,2,4] [--ft-constraint EPS] [--kn-scale X] [--out DIR] [--no-generation] [--json]: CounterFact scores (resumable), each case written alone; methods also r-rome, memit, alphaedit\n  rome eval [--model DIR] --method rome|r-rome|memit|alphaedit (--batch N | --sequential --n N --batch B [--checkpoint-every K]) [--layers 3,4] [--memit-hparams FILE] [--out DIR] [--no-generation] [--json]: many edits in one model: N cases at once, or B at a time with checkpoints (scores of every case so far, live decoding, GE, retention of untouched facts)", EvalCommands.Eval, ["json", "no-generation", "sequential"]),
    ["train"] = ("train [--recipe FILE (default recipes/knowing.json)] [--out DIR] [--data DIR] [--preview N]: train the model a recipe file describes (resumes; --preview prints the first training sequences)", TrainCommands.Train, []),
    ["knows"] = ("knows [--model DIR] [--data DIR] [--unseen N] [--by-template] [--json]: fact recall of a model with a facts.json manifest (--by-template: per template)", TrainCommands.Knows, ["json", "by-template"]),
};

if (args.Length == 0 || args[0] is "help" or "--help" or "-h")
{
    Console.WriteLine("rome: locate and edit factual associations in GPT (ROME, Meng et al. 2022)\n\nCommands:");
    foreach (var (name, c) in commands) Console.WriteLine($"  rome {c.Help}");
    Console.WriteLine("\n--model defaults to Rome:ModelPath in appsettings.json (the bundled models/rome-knowing).");
    return args.Length == 0 ? 1 : 0;
}
if (!commands.TryGetValue(args[0], out var command))
{
    Console.Error.WriteLine($"rome: unknown command '{args[0]}'. Run 'rome help'.");
    return 2;
}

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    if (cancel.IsCancellationRequested) return; // a second Ctrl-C ends the process at once
    e.Cancel = true;
    Console.Error.WriteLine("\nStopping (Ctrl-C again to force)...");
    cancel.Cancel();
};
try
{
    return command.Run(new CliArgs(args.Skip(1), command.Flags), cancel.Token);
}
catch (RomeException e)
{
    Console.Error.WriteLine($"rome {args[0]}: {e.Message}");
    return 2;
}
catch (OperationCanceledException)
{
    Console.Error.WriteLine($"rome {args[0]}: cancelled.");
    return 130;
}
