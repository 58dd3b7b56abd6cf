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
/// A checkpoint in Hugging Face layout: a folder with <c>config.json</c> and <c>model.safetensors</c>, or shards
/// listed in <c>model.safetensors.index.json</c>, in float32, float16 or bfloat16. Every supported family loads
/// (<see cref="HuggingFaceLayout"/> maps its names); GPT-2 is also written back, as Hugging Face transformers reads it.
/// </summary>
public static class Checkpoint
{
    public const string ConfigFile = "config.json";
    public const string WeightsFile = "model.safetensors";
    public const string IndexFile = "model.safetensors.index.json";

    /// <summary>Loads the model in <paramref name="folder"/>, or throws a <see cref="RomeException"/> naming the problem.</summary>
    public static DecoderModel Load(string folder, Device? device = null, ScalarType dtype = ScalarType.Float32)
    {
        if (!Directory.Exists(folder))
            throw new RomeException($"Model folder '{folder}' does not exist.");
        var configPath = Path.Combine(folder, ConfigFile);
        if (!File.Exists(configPath))
            throw new RomeException($"Model folder '{folder}' has no {ConfigFile}.");
        var files = WeightFiles(folder);

        var config = ModelConfig.Load(configPath);
        // Every tensor's shape, checked against the config before a model of that size is allocated: a config asking
        // for a billion-token vocabulary must be an error, not an allocation the machine cannot make.
        // GPT-2's keys may carry a "transformer." prefix.
        var found = new Dictionary<string, (string File, string Key, long[] Shape)>();
        foreach (var file in files)
            foreach (var (key, shape) in ReadHeader(file))
                found[config.Family == ModelFamily.Gpt2 && key.StartsWith("transformer.") ? key["transformer.".Length..] : key] = (file, key, shape);
        var mappings = HuggingFaceLayout.Mappings(config).ToList();
        foreach (var source in mappings.SelectMany(m => m.Sources))
        {
            if (!found.TryGetValue(source.Name, out var entry))
                throw new RomeException($"{folder} lacks the weight '{source.Name}', which a {config.ModelType} model with this {ConfigFile} needs.");
            if (!entry.Shape.SequenceEqual(source.Shape))
                throw new RomeException($"{entry.File}: '{source.Name}' has shape [{string.Join(", ", entry.Shape)}], but {ConfigFile} implies [{string.Join(", ", source.Shape)}].");
        }

        var model = new DecoderModel(config);
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var state = new Dictionary<string, Tensor>();
        try
        {
            foreach (var group in mappings.SelectMany(m => m.Sources).GroupBy(s => found[s.Name].File))
            {
                Dictionary<string, Tensor> part;
                try { part = Safetensors.LoadStateDict(group.Key, group.Select(s => found[s.Name].Key).Distinct().ToList()); }
                catch (Exception e) { throw new RomeException($"{group.Key} could not be read: {e.Message}", e); }
                foreach (var source in group) state[source.Name] = part[found[source.Name].Key];
            }
            using var noGrad = no_grad();
            foreach (var mapping in mappings)
            {
                using var scope = NewDisposeScope();
                var value = mapping.Build(mapping.Sources.Select(s => state[s.Name]).ToArray());
                parameters[mapping.Target].copy_(value);
            }
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

    /// <summary>The folder's safetensors files: <c>model.safetensors</c>, or the shards its index names.</summary>
    public static IReadOnlyList<string> WeightFiles(string folder)
    {
        var single = Path.Combine(folder, WeightsFile);
        if (File.Exists(single)) return [single];
        var index = Path.Combine(folder, IndexFile);
        if (!File.Exists(index))
            throw new RomeException($"Model folder '{folder}' has no {WeightsFile} or {IndexFile} (only safetensors checkpoints are supported).");
        List<string> shards;
        try
        {
            var map = JsonNode.Parse(File.ReadAllText(index))?["weight_map"]?.AsObject() ?? throw new JsonException("no weight_map");
            shards = map.Select(kv => (string?)kv.Value ?? throw new JsonException($"no file for '{kv.Key}'")).Distinct().Order().ToList();
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        { throw new RomeException($"{index} is not a valid shard index: {e.Message}"); }
        foreach (var shard in shards)
            if (shard.Contains('/') || shard.Contains('\\') || !File.Exists(Path.Combine(folder, shard)))
                throw new RomeException($"{index} names the shard '{shard}', which is not in {folder}.");
        return shards.Select(s => Path.Combine(folder, s)).ToList();
    }

    /// <summary>
    /// Writes <paramref name="model"/> to <paramref name="folder"/> (created if needed). Files are written
    /// beside their final names and renamed, so a crash never leaves a half-written checkpoint.
    /// <paramref name="deltas"/> (storage layout [in, out], keyed by module name) are added to the weights written.
    /// <paramref name="float16"/> stores the weights as float16 (half the size; <see cref="Load"/> reads them back
    /// into the dtype asked for).
    /// </summary>
    public static void Save(DecoderModel model, string folder, IReadOnlyDictionary<string, Tensor>? deltas = null, bool float16 = false)
    {
        if (model.Config.Family != ModelFamily.Gpt2)
            throw new RomeException($"Only GPT-2 checkpoints can be written; this model is {model.Config.ModelType}. Export its edits instead (they apply to the original folder).");
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
        AtomicFile.Write(Path.Combine(folder, WeightsFile), path => WriteSafetensors(path, tensors, dtype: float16 ? "F16" : "F32"));
        AtomicFile.Write(Path.Combine(folder, ConfigFile), path => model.Config.Save(path));
    }

    /// <summary>A short content hash of a checkpoint's weights, used to check that edits match a model.</summary>
    public static string Fingerprint(string folder)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 20];
        foreach (var file in WeightFiles(folder))
        {
            using var stream = File.OpenRead(file);
            for (int read; (read = stream.Read(buffer)) > 0;) hash.AppendData(buffer, 0, read);
        }
        return Convert.ToHexString(hash.GetHashAndReset())[..16].ToLowerInvariant();
    }

    /// <summary>
    /// Writes tensors as safetensors with Hugging Face's <c>{"format": "pt"}</c> metadata, in <paramref name="dtype"/>:
    /// "F32", "F16" or "BF16" (rounded to nearest even, as torch rounds).
    /// </summary>
    public static void WriteSafetensors(string path, IEnumerable<(string Name, Tensor Value)> tensors, IReadOnlyDictionary<string, string>? metadata = null, string dtype = "F32")
    {
        if (dtype is not ("F32" or "F16" or "BF16")) throw new ArgumentException($"Unknown dtype {dtype}.", nameof(dtype));
        var elementSize = dtype == "F32" ? sizeof(float) : 2;
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
                ["dtype"] = dtype,
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
            if (dtype == "F16") file.Write(MemoryMarshal.AsBytes(values.Select(v => (Half)v).ToArray().AsSpan()));
            else if (dtype == "BF16") file.Write(MemoryMarshal.AsBytes(values.Select(BFloat16).ToArray().AsSpan()));
            else file.Write(MemoryMarshal.AsBytes(values.AsSpan()));
        }
    }

    private static ushort BFloat16(float value)
    {
        var bits = BitConverter.SingleToUInt32Bits(value);
        return (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
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
                if (dtype is not ("F32" or "F16" or "BF16" or "F64") && HuggingFaceLayout.IsBuffer(name)) continue;
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
            throw new RomeException($"{label} is not a valid safetensors file: it is cut short or not of this format.");
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
}
