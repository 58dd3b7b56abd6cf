using System.Buffers.Binary;
using TorchSharp;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Rome.Model.Modeling;

/// <summary>
/// A GPT-2 checkpoint in Hugging Face layout: a folder with <c>config.json</c> and <c>model.safetensors</c>.
/// Loads keys with or without the <c>transformer.</c> prefix, ignores <c>lm_head.weight</c> (tied) and the
/// <c>attn.bias</c>/<c>attn.masked_bias</c> buffers; saves what Hugging Face transformers loads back.
/// </summary>
public static class Checkpoint
{
    public const string ConfigFile = "config.json";
    public const string WeightsFile = "model.safetensors";

    /// <summary>Loads the model in <paramref name="folder"/>, or throws a <see cref="RomeException"/> naming the problem.</summary>
    public static Gpt2Model Load(string folder, Device? device = null, ScalarType dtype = ScalarType.Float32)
    {
        if (!Directory.Exists(folder))
            throw new RomeException($"Model folder '{folder}' does not exist.");
        var configPath = Path.Combine(folder, ConfigFile);
        var weightsPath = Path.Combine(folder, WeightsFile);
        if (!File.Exists(configPath))
            throw new RomeException($"Model folder '{folder}' has no {ConfigFile}.");
        if (!File.Exists(weightsPath))
            throw new RomeException($"Model folder '{folder}' has no {WeightsFile} (only safetensors checkpoints are supported).");

        var config = Gpt2Config.Load(configPath);
        var shapes = ReadHeader(weightsPath);
        CheckSizes(config, shapes, weightsPath);

        var model = new Gpt2Model(config);
        var expected = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var names = shapes.Keys.Where(k => !Ignored(k)).ToDictionary(Normalize, k => k);
        var missing = expected.Keys.Where(k => !names.ContainsKey(k)).ToList();
        if (missing.Count > 0)
            throw new RomeException($"{weightsPath} lacks {missing.Count} weight(s) a GPT-2 with this config needs, e.g. '{missing[0]}'.");
        foreach (var (name, p) in expected)
        {
            var shape = shapes[names[name]];
            if (!shape.SequenceEqual(p.shape))
                throw new RomeException($"{weightsPath}: '{names[name]}' has shape [{string.Join(", ", shape)}], but config.json implies [{string.Join(", ", p.shape)}].");
        }

        Dictionary<string, Tensor> state;
        try { state = Safetensors.LoadStateDict(weightsPath, names.Values.ToList()); }
        catch (Exception e) { throw new RomeException($"{weightsPath} could not be read: {e.Message}", e); }
        try
        {
            using var noGrad = no_grad();
            foreach (var (name, p) in expected) p.copy_(state[names[name]]);
        }
        finally
        {
            foreach (var t in state.Values) t.Dispose();
        }

        model.eval();
        foreach (var p in model.parameters()) p.requires_grad = false;
        if (dtype != ScalarType.Float32) model.to(dtype);
        if (device is not null) model.to(device);
        return model;
    }

    /// <summary>
    /// The sizes config.json gives must match the weights file before a model of that size is allocated: a config
    /// asking for a billion-token vocabulary must be an error, not an allocation the machine cannot make.
    /// </summary>
    private static void CheckSizes(Gpt2Config c, Dictionary<string, long[]> shapes, string weightsPath)
    {
        void Expect(string name, params long[] shape)
        {
            if (!shapes.TryGetValue(name, out var found) && !shapes.TryGetValue("transformer." + name, out found))
                throw new RomeException($"{weightsPath} lacks '{name}', which a GPT-2 with this config.json needs.");
            if (!found.SequenceEqual(shape))
                throw new RomeException($"{weightsPath}: '{name}' has shape [{string.Join(", ", found)}], but config.json implies [{string.Join(", ", shape)}].");
        }
        Expect("wte.weight", c.VocabSize, c.Embd);
        Expect("wpe.weight", c.Positions, c.Embd);
        Expect($"h.{c.Layers - 1}.mlp.c_fc.weight", c.Embd, c.Inner);
    }

    /// <summary>
    /// Writes <paramref name="model"/> to <paramref name="folder"/> (created if needed). Files are written
    /// beside their final names and renamed, so a crash never leaves a half-written checkpoint.
    /// <paramref name="deltas"/> (storage layout [in, out], keyed by module name) are added to the weights written.
    /// <paramref name="float16"/> stores the weights as float16 (half the size; <see cref="Load"/> reads them back
    /// into the dtype asked for).
    /// </summary>
    public static void Save(Gpt2Model model, string folder, IReadOnlyDictionary<string, Tensor>? deltas = null, bool float16 = false)
    {
        Directory.CreateDirectory(folder);
        var tensors = new List<(string Name, Tensor Value)>();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        foreach (var (name, p) in model.named_parameters())
        {
            var module = name[..name.LastIndexOf('.')];
            var value = deltas is not null && name.EndsWith(".weight") && deltas.TryGetValue(module, out var d) ? p + d : p;
            tensors.Add((name, value));
        }
        WriteAtomically(Path.Combine(folder, WeightsFile), path => WriteSafetensors(path, tensors, float16: float16));
        WriteAtomically(Path.Combine(folder, ConfigFile), path => model.Config.Save(path));
    }

    /// <summary>A short content hash of a checkpoint's weights, used to check that edits match a model.</summary>
    public static string Fingerprint(string folder)
    {
        using var stream = File.OpenRead(Path.Combine(folder, WeightsFile));
        return Convert.ToHexString(SHA256.HashData(stream))[..16].ToLowerInvariant();
    }

    /// <summary>Writes tensors as float32 (or float16) safetensors with Hugging Face's <c>{"format": "pt"}</c> metadata.</summary>
    public static void WriteSafetensors(string path, IEnumerable<(string Name, Tensor Value)> tensors, IReadOnlyDictionary<string, string>? metadata = null, bool float16 = false)
    {
        var elementSize = float16 ? 2 : sizeof(float);
        var list = tensors.ToList();
        var meta = new JsonObject { ["format"] = "pt" };
        foreach (var (k, v) in metadata ?? new Dictionary<string, string>()) meta[k] = v;
        var header = new JsonObject { ["__metadata__"] = meta };
        long offset = 0;
        foreach (var (name, value) in list)
        {
            var size = value.numel() * elementSize;
            header[name] = new JsonObject
            {
                ["dtype"] = float16 ? "F16" : "F32",
                ["shape"] = new JsonArray(value.shape.Select(s => (JsonNode)s).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + size),
            };
            offset += size;
        }
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        var padded = (json.Length + 7) / 8 * 8;
        using var file = File.Create(path);
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)padded);
        file.Write(length);
        file.Write(json);
        for (int i = json.Length; i < padded; i++) file.WriteByte((byte)' ');
        foreach (var (_, value) in list)
        {
            using var cpuValue = value.detach().to(float32).cpu().contiguous();
            var values = cpuValue.data<float>().ToArray();
            if (float16) file.Write(MemoryMarshal.AsBytes(values.Select(v => (Half)v).ToArray().AsSpan()));
            else file.Write(MemoryMarshal.AsBytes(values.AsSpan()));
        }
    }

    /// <summary>Reads and checks a safetensors header: tensor name to shape. Catches truncated or corrupt files.</summary>
    public static Dictionary<string, long[]> ReadHeader(string path)
    {
        using var file = File.OpenRead(path);
        var fileLength = file.Length;
        Span<byte> lengthBytes = stackalloc byte[8];
        if (fileLength < 8 || file.Read(lengthBytes) != 8)
            throw new RomeException($"{path} is truncated: too short to be a safetensors file.");
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        if (headerLength == 0 || headerLength > (ulong)(fileLength - 8) || headerLength > 100_000_000)
            throw new RomeException($"{path} is not a valid safetensors file (header length {headerLength}, file {fileLength} bytes).");
        var headerBytes = new byte[headerLength];
        file.ReadExactly(headerBytes);

        JsonObject header;
        try { header = JsonNode.Parse(headerBytes)!.AsObject(); }
        catch (Exception e) when (e is JsonException or InvalidOperationException or NullReferenceException)
        { throw new RomeException($"{path} has a corrupt safetensors header: {e.Message}"); }

        var dataLength = fileLength - 8 - (long)headerLength;
        var shapes = new Dictionary<string, long[]>();
        foreach (var (name, node) in header)
        {
            if (name == "__metadata__") continue;
            try
            {
                var dtype = (string)node!["dtype"]!;
                if (dtype is not ("F32" or "F16" or "BF16" or "F64"))
                    throw new RomeException($"{path}: tensor '{name}' has dtype {dtype}; only floating-point weights are supported.");
                var begin = (long)node["data_offsets"]![0]!;
                var end = (long)node["data_offsets"]![1]!;
                if (end > dataLength)
                    throw new RomeException($"{path} is truncated: tensor '{name}' ends at byte {end} of the data, but only {dataLength} bytes are there.");
                var shape = node["shape"]!.AsArray().Select(s => (long)s!).ToArray();
                // The byte range must hold exactly the shape's values: libtorch trusts it and may abort otherwise.
                long bytes = dtype switch { "F64" => 8, "F32" => 4, _ => 2 };
                foreach (var d in shape) // capped above the data's length, so a huge shape cannot overflow
                    bytes = d < 0 || bytes < 0 ? -1 : d != 0 && bytes > (dataLength + 1) / d ? dataLength + 1 : bytes * d;
                if (begin < 0 || end - begin != bytes)
                    throw new RomeException($"{path} is corrupt: tensor '{name}' of shape [{string.Join(", ", shape)}] does not fit its byte range.");
                shapes[name] = shape;
            }
            catch (Exception e) when (e is not RomeException)
            { throw new RomeException($"{path} has a corrupt entry for tensor '{name}'."); }
        }
        return shapes;
    }

    /// <summary>
    /// Reads every tensor of a safetensors file into float32 tensors, checking everything in managed code first:
    /// dtype, shape, that each tensor's byte range matches its shape and lies inside the file, and that every value
    /// is finite. For files a user hands us (imported edits): libtorch aborts the process on some malformed input
    /// instead of throwing, so nothing reaches it unchecked. <paramref name="label"/> names the file in messages.
    /// </summary>
    public static (Dictionary<string, string> Metadata, Dictionary<string, Tensor> Tensors) ReadTensorsChecked(string path, string label)
    {
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 8) throw new RomeException($"{label} is too short to be a safetensors file.");
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        if (headerLength == 0 || headerLength > (ulong)(bytes.Length - 8))
            throw new RomeException($"{label} is not a valid safetensors file (its header length is {headerLength}).");
        JsonObject header;
        try { header = JsonNode.Parse(bytes.AsSpan(8, (int)headerLength))!.AsObject(); }
        catch (Exception e) when (e is JsonException or InvalidOperationException or NullReferenceException)
        { throw new RomeException($"{label} has a corrupt safetensors header."); }

        var metadata = new Dictionary<string, string>();
        if (header["__metadata__"] is JsonObject meta)
            foreach (var (k, v) in meta)
                metadata[k] = v is JsonValue value && value.TryGetValue<string>(out var text) ? text : throw new RomeException($"{label} has non-text metadata '{k}'.");
        var data = bytes.AsMemory(8 + (int)headerLength);
        var result = new Dictionary<string, Tensor>();
        try
        {
            foreach (var (name, node) in header)
            {
                if (name == "__metadata__") continue;
                var values = ReadValues(node, data.Span, label, name);
                long[] shape = node!["shape"]!.AsArray().Select(s => (long)s!).ToArray();
                result[name] = tensor(values, shape);
            }
        }
        catch
        {
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
        return (metadata, result);
    }

    private static float[] ReadValues(JsonNode? node, ReadOnlySpan<byte> data, string label, string name)
    {
        string dtype; long[] shape; long begin, end;
        try
        {
            dtype = (string)node!["dtype"]!;
            shape = node["shape"]!.AsArray().Select(s => (long)s!).ToArray();
            var offsets = node["data_offsets"]!.AsArray();
            (begin, end) = ((long)offsets[0]!, (long)offsets[1]!);
        }
        catch (Exception e) when (e is not RomeException)
        { throw new RomeException($"{label} has a corrupt entry for tensor '{name}'."); }
        var size = dtype switch { "F32" => 4, "F16" or "BF16" => 2, "F64" => 8, _ => throw new RomeException($"{label}: tensor '{name}' has dtype {dtype}; only floating-point tensors are supported.") };
        if (shape.Length > 8 || shape.Any(d => d < 0 || d > int.MaxValue))
            throw new RomeException($"{label}: tensor '{name}' has an impossible shape [{string.Join(", ", shape)}].");
        long count = 1;
        foreach (var d in shape) count = Math.Min(count * d, int.MaxValue + 1L);
        if (begin < 0 || end > data.Length || end - begin != count * size)
            throw new RomeException($"{label} is truncated or corrupt: tensor '{name}' does not fit its byte range.");
        var raw = data.Slice((int)begin, (int)(end - begin));
        var values = new float[count];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = dtype switch
            {
                "F32" => BinaryPrimitives.ReadSingleLittleEndian(raw[(4 * i)..]),
                "F16" => (float)BinaryPrimitives.ReadHalfLittleEndian(raw[(2 * i)..]),
                "BF16" => BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(raw[(2 * i)..]) << 16),
                _ => (float)BinaryPrimitives.ReadDoubleLittleEndian(raw[(8 * i)..]),
            };
            if (!float.IsFinite(values[i]))
                throw new RomeException($"{label}: tensor '{name}' holds a value that is not a finite number.");
        }
        return values;
    }

    private static bool Ignored(string key) =>
        key.StartsWith("lm_head.") || System.Text.RegularExpressions.Regex.IsMatch(key, @"(^|\.)h\.\d+\.attn\.(masked_)?bias$");

    private static string Normalize(string key) => key.StartsWith("transformer.") ? key["transformer.".Length..] : key;

    internal static void WriteAtomically(string path, Action<string> write)
    {
        var temp = path + ".partial";
        try
        {
            write(temp);
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }
}
