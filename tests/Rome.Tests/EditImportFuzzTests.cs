using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;

namespace Rome.Tests;

/// <summary>
/// Imported edits files are user input: every malformed file must end in a clear <see cref="RomeException"/>
/// and leave the session exactly as it was. libtorch aborts the whole process on some bad tensors (a size
/// mismatch in a matmul), so nothing from the file may reach it unchecked.
/// </summary>
public class EditImportFuzzTests(RandomGpt2Fixture fixture) : IClassFixture<RandomGpt2Fixture>
{
    private readonly LanguageModel _lm = fixture.Model;
    private readonly string _folder = TestPaths.TempFolder();

    private const string Module = "h.1.mlp.c_proj";
    private int Inner => (int)_lm.Model.Linear(Module).Weight.shape[0];
    private int Width => (int)_lm.Model.Linear(Module).Weight.shape[1];

    /// <summary>A well-formed edits file for this model with the given vectors (as raw float32 data).</summary>
    private string Edits(float[][] pairs, int? listed = null, string module = Module, long[]? uShape = null,
                         string dtype = "F32", string? fingerprint = null, Action<JsonObject>? tweak = null)
    {
        var count = listed ?? pairs.Length / 2;
        var edits = new JsonArray();
        for (int i = 0; i < count; i++)
            edits.Add(new JsonObject
            {
                ["Request"] = new JsonObject { ["Prompt"] = "{} is in", ["Subject"] = "Paris", ["Target"] = "Rome" },
                ["Layer"] = 1, ["Module"] = module, ["TargetProbability"] = 0.5,
            });
        var header = new JsonObject
        {
            ["__metadata__"] = new JsonObject
            {
                ["format"] = "rome-edits", ["model"] = fingerprint ?? _lm.Fingerprint, ["edits"] = edits.ToJsonString(),
            },
        };
        var data = new MemoryStream();
        for (int i = 0; i < pairs.Length; i++)
        {
            var bytes = new byte[pairs[i].Length * 4];
            for (int j = 0; j < pairs[i].Length; j++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(4 * j), pairs[i][j]);
            header[$"edit.{i / 2}.{(i % 2 == 0 ? "u" : "v")}"] = new JsonObject
            {
                ["dtype"] = dtype,
                ["shape"] = new JsonArray((i % 2 == 0 ? uShape : null)?.Select(d => (JsonNode)d).ToArray() ?? [(JsonNode)pairs[i].Length]),
                ["data_offsets"] = new JsonArray(data.Length, data.Length + bytes.Length),
            };
            data.Write(bytes);
        }
        tweak?.Invoke(header);
        return Write(Encoding.UTF8.GetBytes(header.ToJsonString()), data.ToArray());
    }

    private string Write(byte[] header, byte[] data, ulong? headerLength = null)
    {
        var path = Path.Combine(_folder, Guid.NewGuid().ToString("N") + ".safetensors");
        using var file = File.Create(path);
        var length = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, headerLength ?? (ulong)header.Length);
        file.Write(length);
        file.Write(header);
        file.Write(data);
        return path;
    }

    private float[] Ones(int n, float value = 0.01f) => Enumerable.Repeat(value, n).ToArray();

    public static IEnumerable<object[]> Cases() =>
        new[]
        {
            "wrong u shape", "wrong v shape", "u as a matrix", "listed 2, holds 1", "listed 1, holds 2", "NaN", "Infinity",
            "no such layer", "not a module", "integer dtype", "offsets past the end", "offsets overlap the shape",
            "huge shape", "negative shape", "corrupt JSON", "header length past the end", "another model",
            "not an edits file", "edits list unreadable", "empty edits list", "truncated", "empty file", "random bytes",
        }.Select(c => new object[] { c });

    private string Make(string name) => name switch
    {
        "wrong u shape" => Edits([Ones(Inner + 3), Ones(Width)]),
        "wrong v shape" => Edits([Ones(Inner), Ones(2 * Width)]),
        "u as a matrix" => Edits([Ones(Inner), Ones(Width)], uShape: [Inner / 2, 2]),
        "listed 2, holds 1" => Edits([Ones(Inner), Ones(Width)], listed: 2),
        "listed 1, holds 2" => Edits([Ones(Inner), Ones(Width), Ones(Inner), Ones(Width)], listed: 1),
        "NaN" => Edits([Ones(Inner, float.NaN), Ones(Width)]),
        "Infinity" => Edits([Ones(Inner), Ones(Width, float.PositiveInfinity)]),
        "no such layer" => Edits([Ones(Inner), Ones(Width)], module: "h.99.mlp.c_proj"),
        "not a module" => Edits([Ones(Inner), Ones(Width)], module: "../../etc/passwd"),
        "integer dtype" => Edits([Ones(Inner), Ones(Width)], dtype: "I32"),
        "offsets past the end" => Edits([Ones(Inner), Ones(Width)], tweak: h => h["edit.0.v"]!["data_offsets"] = new JsonArray(0, 1 << 30)),
        "offsets overlap the shape" => Edits([Ones(Inner), Ones(Width)], tweak: h => h["edit.0.u"]!["data_offsets"] = new JsonArray(0, 8)),
        "huge shape" => Edits([Ones(Inner), Ones(Width)], uShape: [1L << 40]),
        "negative shape" => Edits([Ones(Inner), Ones(Width)], uShape: [-Inner]),
        "corrupt JSON" => Write(Encoding.UTF8.GetBytes("{\"edit.0.u\": {\"dtype\": "), new byte[16]),
        "header length past the end" => Write(Encoding.UTF8.GetBytes("{}"), [], headerLength: ulong.MaxValue),
        "another model" => Edits([Ones(Inner), Ones(Width)], fingerprint: "0123456789abcdef"),
        "not an edits file" => Edits([Ones(Inner), Ones(Width)], tweak: h => h["__metadata__"]!["format"] = "pt"),
        "edits list unreadable" => Edits([Ones(Inner), Ones(Width)], tweak: h => h["__metadata__"]!["edits"] = "[{\"Layer\": \"x\""),
        "empty edits list" => Edits([], tweak: h => h["__metadata__"]!["edits"] = "[]"),
        "truncated" => Truncated(Edits([Ones(Inner), Ones(Width)])),
        "empty file" => Write([], [], headerLength: 0),
        "random bytes" => RandomBytes(),
        _ => throw new ArgumentException(name),
    };

    private static string Truncated(string path)
    {
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length - 100)]);
        return path;
    }

    private string RandomBytes()
    {
        var bytes = new byte[4096];
        new Random(7).NextBytes(bytes);
        var path = Path.Combine(_folder, "random.safetensors");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void AMalformedEditsFileIsRefusedWithAMessage_AndLeavesTheSessionUnchanged(string name)
    {
        var ids = _lm.Encode("Paris is in");
        using var session = new EditSession(_lm);
        var hp = new RomeHyperParameters { Layer = 1, Steps = 5, ContextTemplateLengthParams = [[5, 1]] };
        session.Apply(new RomeEditor(_lm, hp), new EditRequest("{} is in", "Paris", "Rome"), covariance: null);
        using var before = _lm.NextTokenLogProbs(ids, session.Interventions());

        var path = Make(name);
        var error = Assert.Throws<RomeException>(() => session.Import(path, "class.safetensors"));

        Assert.DoesNotContain(_folder, error.Message);   // no server paths in messages
        Assert.Single(session.Edits);
        using var after = _lm.NextTokenLogProbs(ids, session.Interventions());
        Assert.True(after.eq(before).all().item<bool>(), "a refused import must leave the model's outputs unchanged");
    }

    [Fact]
    public void AWellFormedFileImports_ButNotTwice()
    {
        using var session = new EditSession(_lm);
        var path = Edits([Ones(Inner), Ones(Width), Ones(Inner, 0.02f), Ones(Width)]);
        Assert.Equal(2, session.Import(path));
        Assert.Contains("already applied", Assert.Throws<RomeException>(() => session.Import(path)).Message);
        Assert.Equal(2, session.Edits.Count);
    }

    [Fact]
    public void HalfPrecisionEditsImport()
    {
        using var session = new EditSession(_lm);
        var path = Edits([Ones(Inner / 2), Ones(Width / 2)], dtype: "F16", tweak: h =>
        {
            h["edit.0.u"]!["shape"] = new JsonArray(Inner);
            h["edit.0.v"]!["shape"] = new JsonArray(Width);
        });
        Assert.Equal(1, session.Import(path));
        // 0.01f's two float32 halves read as two float16 values; all must be finite and in place.
        Assert.Equal([Inner, 1], session.Edits[0].Overlays[0].U.shape);   // a file of the first format: one rank-one edit
    }

    /// <summary>Before the checks, this file aborted the process (exit 134) from libtorch's size mismatch.</summary>
    [Fact]
    public async Task TheCliRefusesAWrongShapeFileWithAnErrorInsteadOfAborting()
    {
        var path = Edits([Ones(Inner + 3), Ones(2 * Width)]);
        var (exit, _, error) = await TestPaths.RunCli("edit", "--model", TestPaths.Fixture("gpt2-random"), "--prompt", "{} is in", "--subject", "Paris",
            "--target", "Rome", "--identity-covariance", "--layer", "1", "--load-edits", path);
        Assert.Equal(2, exit);   // a RomeException's exit code; libtorch's abort was 134
        Assert.Contains("needs [", error);
    }
}
