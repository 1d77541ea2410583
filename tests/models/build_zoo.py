#!/usr/bin/env python3
"""Kiln's model zoo: real architectures with seeded weights, exported to ONNX with PyTorch.

Nothing is downloaded: every weight comes from a fixed seed, so the same file always yields the
same models. Each model is exported at opset 13 and 17, with static shapes and with dynamic
batch (BERT and GPT-2 also dynamic sequence, the LSTM also dynamic time). A variant is named
BASE_opN (static) or BASE_opN_dyn and is written as four files:

    NAME.onnx         the exported model
    NAME.inputs.npz   inputs, keys = the model's input names
    NAME.ref.npz      PyTorch eager fp32 outputs for those inputs, keys = the output names
    NAME.ref64.npz    the same model run by PyTorch in float64: the exact answer, against which
                      an fp32 engine's error can be set beside PyTorch's own fp32 error

Dynamic variants are traced at the static shape and tested at another one (batch 3, BERT and
GPT-2 also a shorter sequence, the LSTM a shorter sequence), so no test shape is baked in.

Files are cached in ${KILN_ZOO_DIR:-~/.cache/kiln-zoo}/<hash of this file>/: a rerun reuses them,
and editing this file starts a fresh folder (`--prune` deletes the folders of other versions).

    python tests/models/build_zoo.py --list
    python tests/models/build_zoo.py --models mlp,resnet50_op17     # a base name means all its variants
    python tests/models/build_zoo.py --models bert_base --opsets 17 --kinds dyn

From Python: `build_zoo.ensure("resnet50_op17")` returns the four paths, building if needed.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import copy
import fcntl
import functools
import hashlib
import math
import os
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn

OPSETS = (13, 17)
KINDS = ("static", "dyn")
_THIS_FILE = os.path.abspath(__file__)


def seed_of(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def zoo_root() -> str:
    return os.path.expanduser(os.environ.get("KILN_ZOO_DIR") or "~/.cache/kiln-zoo")


@functools.lru_cache(maxsize=None)
def zoo_dir() -> str:
    """The cache folder of this version of the zoo (the hash covers this file and torch's version,
    since either changes the exported graphs). Fixed at first use, so editing the file while a
    build runs does not move its output."""
    h = hashlib.sha256()
    with open(_THIS_FILE, "rb") as f:
        h.update(f.read())
    h.update(torch.__version__.encode())
    return os.path.join(zoo_root(), h.hexdigest()[:16])


# ------------------------------------------------------------------------------------------------
# Hand-written Hugging Face style transformers: the ops their ONNX exports are made of
# (Gather embeddings, MatMul+Add, Reshape/Transpose heads, mask Add, Softmax, GELU, LayerNorm).
# ------------------------------------------------------------------------------------------------
class BertSelfAttention(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, d // heads
        self.query = nn.Linear(d, d)
        self.key = nn.Linear(d, d)
        self.value = nn.Linear(d, d)

    def split(self, x):  # [b, s, d] -> [b, h, s, hd]
        return x.view(x.size()[:-1] + (self.heads, self.head_dim)).permute(0, 2, 1, 3)

    def forward(self, x, ext_mask):
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim) + ext_mask
        probs = nn.functional.softmax(scores, dim=-1)
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        return ctx.view(ctx.size()[:-2] + (self.heads * self.head_dim,))


class BertLayer(nn.Module):
    def __init__(self, d: int, heads: int, ff: int, eps: float):
        super().__init__()
        self.attention = BertSelfAttention(d, heads)
        self.attn_out = nn.Linear(d, d)
        self.attn_ln = nn.LayerNorm(d, eps=eps)
        self.intermediate = nn.Linear(d, ff)
        self.output = nn.Linear(ff, d)
        self.out_ln = nn.LayerNorm(d, eps=eps)

    def forward(self, x, ext_mask):
        a = self.attn_ln(self.attn_out(self.attention(x, ext_mask)) + x)
        i = nn.functional.gelu(self.intermediate(a))  # exact (Erf) GELU, as in BERT
        return self.out_ln(self.output(i) + a)


class Bert(nn.Module):
    """BERT-base encoder and pooler, laid out like transformers.BertModel."""

    def __init__(self, vocab=30522, d=768, layers=12, heads=12, ff=3072, max_pos=512, types=2, eps=1e-12):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, d)
        self.position_embeddings = nn.Embedding(max_pos, d)
        self.token_type_embeddings = nn.Embedding(types, d)
        self.emb_ln = nn.LayerNorm(d, eps=eps)
        self.register_buffer("position_ids", torch.arange(max_pos).expand((1, -1)), persistent=False)
        self.layers = nn.ModuleList([BertLayer(d, heads, ff, eps) for _ in range(layers)])
        self.pooler = nn.Linear(d, d)
        for m in self.modules():  # BERT's initialisation: N(0, 0.02)
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, 0.02)
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.bias, 0.0, 0.02)

    def forward(self, input_ids, attention_mask, token_type_ids):
        pos = self.position_ids[:, :input_ids.size(1)]
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids) + self.position_embeddings(pos)
        x = self.emb_ln(x)
        ext = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -10000.0
        for layer in self.layers:
            x = layer(x, ext)
        return x, torch.tanh(self.pooler(x[:, 0]))


class Conv1D(nn.Module):
    """GPT-2's Conv1D: addmm with an [in, out] weight (exported as Reshape, Gemm, Reshape)."""

    def __init__(self, n_out: int, n_in: int):
        super().__init__()
        self.n_out = n_out
        self.weight = nn.Parameter(torch.empty(n_in, n_out).normal_(0.0, 0.02))
        self.bias = nn.Parameter(torch.empty(n_out).normal_(0.0, 0.02))

    def forward(self, x):
        y = torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight)
        return y.view(x.size()[:-1] + (self.n_out,))


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class GPT2Attention(nn.Module):
    def __init__(self, d: int, heads: int, n_pos: int):
        super().__init__()
        self.heads, self.head_dim, self.d = heads, d // heads, d
        causal = torch.tril(torch.ones(n_pos, n_pos, dtype=torch.bool)).view(1, 1, n_pos, n_pos)
        self.register_buffer("causal", causal, persistent=False)
        self.c_attn = Conv1D(3 * d, d)
        self.c_proj = Conv1D(d, d)

    def split(self, x):
        return x.view(x.size()[:-1] + (self.heads, self.head_dim)).permute(0, 2, 1, 3)

    def forward(self, x):
        q, k, v = self.c_attn(x).split(self.d, dim=2)
        q, k, v = self.split(q), self.split(k), self.split(v)
        w = torch.matmul(q, k.transpose(-1, -2)) / torch.full([], v.size(-1) ** 0.5, dtype=x.dtype)
        ql, kl = q.size(-2), k.size(-2)
        mask = self.causal[:, :, kl - ql:kl, :kl]
        w = torch.where(mask, w, torch.tensor(torch.finfo(w.dtype).min, dtype=w.dtype))
        a = torch.matmul(nn.functional.softmax(w, dim=-1), v).permute(0, 2, 1, 3).contiguous()
        return self.c_proj(a.view(a.size()[:-2] + (self.d,)))


class GPT2Block(nn.Module):
    def __init__(self, d: int, heads: int, n_pos: int, eps: float):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d, eps=eps)
        self.attn = GPT2Attention(d, heads, n_pos)
        self.ln_2 = nn.LayerNorm(d, eps=eps)
        self.c_fc = Conv1D(4 * d, d)
        self.c_proj = Conv1D(d, 4 * d)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.c_proj(gelu_tanh(self.c_fc(self.ln_2(x))))


class GPT2(nn.Module):
    """GPT-2 small language model (pre-LN decoder, tanh GELU, LM head tied to the token embedding)."""

    def __init__(self, vocab=50257, d=768, layers=12, heads=12, n_pos=1024, eps=1e-5):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(n_pos, d)
        self.h = nn.ModuleList([GPT2Block(d, heads, n_pos, eps) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(d, eps=eps)
        nn.init.normal_(self.wte.weight, 0.0, 0.02)
        nn.init.normal_(self.wpe.weight, 0.0, 0.01)

    def forward(self, input_ids):
        pos = torch.arange(0, input_ids.size(-1), dtype=torch.long).unsqueeze(0)
        x = self.wte(input_ids) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        return torch.matmul(self.ln_f(x), self.wte.weight.t())


class LSTMModel(nn.Module):
    """Acoustic-model shape: [time, batch, 80] features -> 2-layer LSTM(256) -> Linear(32)."""

    def __init__(self, feat=80, hidden=256, layers=2, classes=32):
        super().__init__()
        self.lstm = nn.LSTM(feat, hidden, num_layers=layers)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, x):
        y, _ = self.lstm(x)
        return self.fc(y)


def mlp():
    """Applied to every row of a [batch, 16, 64] input, so it exports as MatMul, Add and Relu."""
    return nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))


def torchvision_model(name: str) -> Callable[[], nn.Module]:
    def build():
        import torchvision.models as tvm
        return getattr(tvm, name)(weights=None)
    return build


# ------------------------------------------------------------------------------------------------
# The registry. Shapes are templates: a str is a dimension whose size comes from the variant's
# dims (and is a dynamic axis in the _dyn variants, when listed in `dynamic`).
# ------------------------------------------------------------------------------------------------
Shape = Tuple  # of int | str


@dataclass
class Spec:
    name: str
    build: Callable[[], nn.Module]
    inputs: List[Tuple[str, str, Shape]]  # (name, kind, shape); kind: float | ids<vocab> | mask | types
    outputs: List[Tuple[str, Shape]]
    static_dims: Dict[str, int]
    dyn_dims: Dict[str, int]  # the dims the dynamic variant is tested at
    dynamic: Tuple[str, ...]
    calibrate_bn: bool = False
    notes: str = ""


IMG = [("input", "float", ("batch", 3, 224, 224))]
LOGITS = [("logits", ("batch", 1000))]
SPECS: Dict[str, Spec] = collections.OrderedDict()


def _spec(*args, **kw):
    s = Spec(*args, **kw)
    SPECS[s.name] = s


_spec("mlp", mlp, [("input", "float", ("batch", 16, 64))], [("logits", ("batch", 16, 10))],
      {"batch": 1}, {"batch": 3}, ("batch",), notes="64-256-256-10 MatMul/Add/Relu")
_spec("lstm", LSTMModel, [("input", "float", ("time", "batch", 80))], [("logits", ("time", "batch", 32))],
      {"time": 64, "batch": 1}, {"time": 37, "batch": 3}, ("time", "batch"), notes="2-layer LSTM 80->256, Linear 32")
_spec("squeezenet1_1", torchvision_model("squeezenet1_1"), IMG, LOGITS, {"batch": 1}, {"batch": 3}, ("batch",),
      notes="torchvision SqueezeNet 1.1")
_spec("mobilenet_v3_large", torchvision_model("mobilenet_v3_large"), IMG, LOGITS, {"batch": 1}, {"batch": 3},
      ("batch",), calibrate_bn=True, notes="torchvision MobileNetV3-Large (HardSwish, SE)")
_spec("efficientnet_b0", torchvision_model("efficientnet_b0"), IMG, LOGITS, {"batch": 1}, {"batch": 3}, ("batch",),
      calibrate_bn=True, notes="torchvision EfficientNet-B0 (SiLU, SE)")
_spec("resnet50", torchvision_model("resnet50"), IMG, LOGITS, {"batch": 1}, {"batch": 3}, ("batch",),
      calibrate_bn=True, notes="torchvision ResNet-50")
_spec("vit_b_16", torchvision_model("vit_b_16"), IMG, LOGITS, {"batch": 1}, {"batch": 3}, ("batch",),
      notes="torchvision ViT-B/16 (nn.MultiheadAttention), head re-initialised")
_spec("bert_base", Bert,
      [("input_ids", "ids30522", ("batch", "seq")), ("attention_mask", "mask", ("batch", "seq")),
       ("token_type_ids", "types", ("batch", "seq"))],
      [("last_hidden_state", ("batch", "seq", 768)), ("pooler_output", ("batch", 768))],
      {"batch": 1, "seq": 128}, {"batch": 3, "seq": 64}, ("batch", "seq"),
      notes="BERT-base encoder + pooler, Hugging Face layout, seq 128")
_spec("gpt2", GPT2, [("input_ids", "ids50257", ("batch", "seq"))], [("logits", ("batch", "seq", 50257))],
      {"batch": 1, "seq": 128}, {"batch": 3, "seq": 32}, ("batch", "seq"),
      notes="GPT-2 small LM, Hugging Face layout, causal mask via Where, tied LM head, seq 128")


def variant_name(base: str, opset: int, dynamic: bool) -> str:
    return f"{base}_op{opset}" + ("_dyn" if dynamic else "")


def all_variants() -> List[str]:
    return [variant_name(b, o, d) for b in SPECS for o in OPSETS for d in (False, True)]


def parse_variant(name: str) -> Tuple[Spec, int, bool]:
    """'resnet50_op17_dyn' -> (spec, 17, True)."""
    dynamic = name.endswith("_dyn")
    stem = name[:-4] if dynamic else name
    base, _, opset = stem.rpartition("_op")
    if base not in SPECS or not opset.isdigit() or int(opset) not in OPSETS:
        raise KeyError(f"unknown model variant '{name}': expected BASE_opN or BASE_opN_dyn with BASE in "
                       f"{', '.join(SPECS)} and N in {', '.join(map(str, OPSETS))}")
    return SPECS[base], int(opset), dynamic


def select(models: Optional[str], opsets: Optional[str] = None, kinds: Optional[str] = None) -> List[str]:
    """Variant names for a comma list of base or variant names (all when empty), filtered by opsets/kinds."""
    want_opsets = {int(o) for o in opsets.split(",")} if opsets else set(OPSETS)
    want_kinds = set(kinds.split(",")) if kinds else set(KINDS)
    bad = want_kinds - set(KINDS)
    if bad or not want_opsets <= set(OPSETS):
        raise KeyError(f"opsets must be among {OPSETS} and kinds among {KINDS}")
    out = []
    for item in (models.split(",") if models else list(SPECS)):
        item = item.strip()
        if item in SPECS:
            out += [variant_name(item, o, d) for o in OPSETS for d in (False, True)
                    if o in want_opsets and ("dyn" if d else "static") in want_kinds]
        elif item:
            parse_variant(item)
            out.append(item)
    return list(dict.fromkeys(out))


# ------------------------------------------------------------------------------------------------
# Building
# ------------------------------------------------------------------------------------------------
def _shape(template: Shape, dims: Dict[str, int]) -> Tuple[int, ...]:
    return tuple(dims[d] if isinstance(d, str) else d for d in template)


def make_inputs(spec: Spec, dims: Dict[str, int], seed: int) -> "collections.OrderedDict[str, np.ndarray]":
    rs = np.random.RandomState(seed)
    feeds = collections.OrderedDict()
    for name, kind, template in spec.inputs:
        shape = _shape(template, dims)
        if kind == "float":
            feeds[name] = rs.standard_normal(shape).astype(np.float32)
        elif kind.startswith("ids"):
            feeds[name] = rs.randint(0, int(kind[3:]), size=shape).astype(np.int64)
        elif kind == "mask":  # the last eighth of every sequence is padding
            mask = np.ones(shape, np.int64)
            mask[:, shape[1] - max(1, shape[1] // 8):] = 0
            feeds[name] = mask
        elif kind == "types":  # second half is segment B
            types = np.zeros(shape, np.int64)
            types[:, shape[1] // 2:] = 1
            feeds[name] = types
        else:
            raise ValueError(f"unknown input kind {kind}")
    return feeds


def _randomize_trivial_params(model: nn.Module) -> None:
    """Weights or biases that start at zero or one (torchvision's ViT head, conv and classifier
    biases, norm scales and shifts) would let a kernel that mishandles them pass: give them values."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            if not m.weight.detach().any():
                nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None and not m.bias.detach().any():
                nn.init.normal_(m.bias, 0.0, 0.02)
        elif isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm)) and m.weight is not None:
            with torch.no_grad():
                m.weight.uniform_(0.8, 1.2)
                m.bias.normal_(0.0, 0.05)


def _calibrate_bn(model: nn.Module, spec: Spec, seed: int) -> None:
    """Set BatchNorm running statistics to the batch statistics of random inputs, as training would,
    so activations stay in a realistic range through deep nets."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batches
        m.train()
    feeds = make_inputs(spec, dict(spec.static_dims, batch=8), seed)
    with torch.no_grad():
        for _ in range(2):
            model(*(torch.from_numpy(v) for v in feeds.values()))
            feeds = make_inputs(spec, dict(spec.static_dims, batch=8), seed + 1)
    for m in bns:
        m.eval()


def torch_model(base: str, cache: bool = False) -> nn.Module:
    """The seeded PyTorch model (in eval mode) that the zoo exports for `base`. Its weights are read
    from BASE.pt in the zoo folder when that exists (skipping BatchNorm calibration); `cache`
    writes that file when it does not."""
    spec = SPECS[base]
    torch.manual_seed(seed_of(base))
    model = spec.build()
    model.eval()
    saved = os.path.join(zoo_dir(), base + ".pt")
    if os.path.exists(saved):
        model.load_state_dict(torch.load(saved))
        return model
    _randomize_trivial_params(model)
    if spec.calibrate_bn:
        _calibrate_bn(model, spec, seed_of(base) + 1)
    if cache:
        os.makedirs(os.path.dirname(saved), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(saved), suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            torch.save(model.state_dict(), f)
        os.replace(tmp, saved)
    return model


def sample_inputs(base: str, dynamic: bool) -> "collections.OrderedDict[str, np.ndarray]":
    spec = SPECS[base]
    dims = spec.dyn_dims if dynamic else spec.static_dims
    return make_inputs(spec, dims, seed_of(base + ("/dyn" if dynamic else "/static")))


def run_torch(model: nn.Module, feeds) -> List[np.ndarray]:
    # Grad stays enabled: under no_grad nn.MultiheadAttention takes a fused fast path, while the
    # exported graph (traced with grad on) follows the plain one.
    out = model(*(torch.from_numpy(v) for v in feeds.values()))
    out = out if isinstance(out, tuple) else (out,)
    return [o.detach().numpy() for o in out]


def run_torch_float64(model: nn.Module, feeds) -> List[np.ndarray]:
    """The model's outputs computed in float64 (on a copy), as float64 arrays."""
    model64 = copy.deepcopy(model).double()
    args = [torch.from_numpy(v.astype(np.float64) if v.dtype == np.float32 else v) for v in feeds.values()]
    with torch.no_grad():
        out = model64(*args)
    out = out if isinstance(out, tuple) else (out,)
    return [o.numpy() for o in out]


def paths(name: str, directory: Optional[str] = None) -> Dict[str, str]:
    d = directory or zoo_dir()
    return {k: os.path.join(d, f"{name}{suffix}") for k, suffix in
            (("onnx", ".onnx"), ("inputs", ".inputs.npz"), ("ref", ".ref.npz"), ("ref64", ".ref64.npz"))}


def _complete(p: Dict[str, str]) -> bool:
    return all(os.path.exists(v) for v in p.values())


@contextlib.contextmanager
def _locked(directory: str, name: str):
    """One builder per model at a time (tests, CI and the demo may start together)."""
    with open(os.path.join(directory, f".{name}.lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _save_npz(path: str, arrays) -> None:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)


class _Builder:
    """Builds variants, keeping one PyTorch model and its reference outputs between the variants
    of the same base (the opsets share weights, inputs and references)."""

    def __init__(self, log=print):
        self.log = log
        self.base: Optional[str] = None
        self.model: Optional[nn.Module] = None
        self.refs: Dict[bool, Tuple[dict, dict, dict]] = {}

    def _model(self, base: str) -> nn.Module:
        if self.base != base:
            self.base, self.model, self.refs = base, None, {}
            t0 = time.time()
            self.model = torch_model(base)
            self.log(f"  {base}: PyTorch model ready in {time.time() - t0:.1f}s")
        return self.model

    def _reference(self, base: str, dynamic: bool):
        model = self._model(base)
        if dynamic not in self.refs:
            feeds = sample_inputs(base, dynamic)
            names = [n for n, _ in SPECS[base].outputs]
            ref = collections.OrderedDict(zip(names, run_torch(model, feeds)))
            ref64 = collections.OrderedDict(zip(names, run_torch_float64(model, feeds)))
            self.refs[dynamic] = (feeds, ref, ref64)
        return self.refs[dynamic]

    def build(self, name: str, directory: str, force: bool = False) -> Dict[str, str]:
        spec, opset, dynamic = parse_variant(name)
        p = paths(name, directory)
        with _locked(directory, name):
            if _complete(p) and not force:
                return p
            t0 = time.time()
            feeds, ref, ref64 = self._reference(spec.name, dynamic)
            model = self._model(spec.name)
            example = tuple(torch.from_numpy(v) for v in sample_inputs(spec.name, False).values())
            dynamic_axes = None
            if dynamic:
                dynamic_axes = {}
                for n, *rest in spec.inputs + spec.outputs:
                    template = rest[-1]
                    axes = {i: d for i, d in enumerate(template) if isinstance(d, str) and d in spec.dynamic}
                    if axes:
                        dynamic_axes[n] = axes
            fd, tmp = tempfile.mkstemp(dir=directory, suffix=".onnx.tmp")
            os.close(fd)
            try:
                with warnings.catch_warnings():  # the exporter's notes on shape inference are not ours to act on
                    warnings.simplefilter("ignore")
                    torch.onnx.export(model, example, tmp, input_names=[n for n, _, _ in spec.inputs],
                                      output_names=[n for n, _ in spec.outputs], dynamic_axes=dynamic_axes,
                                      opset_version=opset, do_constant_folding=True)
                import onnx
                onnx.checker.check_model(tmp)
                _save_npz(p["inputs"], feeds)
                _save_npz(p["ref"], ref)
                _save_npz(p["ref64"], ref64)
                os.replace(tmp, p["onnx"])  # last: a complete set of files means a finished build
            finally:
                if os.path.exists(tmp):
                    os.remove(tmp)
            self.log(f"[built] {name}: {os.path.getsize(p['onnx']) / 1e6:.1f} MB in {time.time() - t0:.1f}s")
            return p


def build(names: List[str], force: bool = False, log=print) -> Dict[str, Dict[str, str]]:
    """Builds (or finds in the cache) each variant; returns name -> paths."""
    directory = zoo_dir()
    os.makedirs(directory, exist_ok=True)
    builder = _Builder(log)
    out = {}
    # variants of one base next to each other, so its PyTorch model is made once
    for name in sorted(names, key=lambda n: list(SPECS).index(parse_variant(n)[0].name)):
        out[name] = builder.build(name, directory, force)
    return out


def ensure(name: str, log=print) -> Dict[str, str]:
    """Paths of a variant's onnx/inputs/ref/ref64 files, building it first if it is not cached."""
    p = paths(name)
    if _complete(p):
        return p
    return build([name], log=log)[name]


def load_npz(path: str) -> "collections.OrderedDict[str, np.ndarray]":
    with np.load(path) as z:
        return collections.OrderedDict((k, z[k]) for k in z.files)


def prune() -> List[str]:
    """Removes the cache folders of other versions of this file."""
    root, keep = zoo_root(), os.path.basename(zoo_dir())
    removed = []
    if os.path.isdir(root):
        for d in os.listdir(root):
            if d != keep and os.path.isdir(os.path.join(root, d)):
                shutil.rmtree(os.path.join(root, d))
                removed.append(d)
    return removed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", help="comma list of base names (all their variants) or variant names; default: all")
    ap.add_argument("--opsets", help="comma list among 13,17 (filters base names)")
    ap.add_argument("--kinds", help="comma list among static,dyn (filters base names)")
    ap.add_argument("--list", action="store_true", help="list the variants and whether each is cached")
    ap.add_argument("--force", action="store_true", help="rebuild even if cached")
    ap.add_argument("--prune", action="store_true", help="delete the cache folders of other versions of this file")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="PyTorch threads")
    a = ap.parse_args(argv)
    try:
        names = select(a.models, a.opsets, a.kinds)
    except KeyError as e:
        print(f"build_zoo: {e.args[0]}", file=sys.stderr)
        return 2
    if a.prune:
        for d in prune():
            print(f"removed {os.path.join(zoo_root(), d)}")
    if a.list:
        print(f"zoo: {zoo_dir()}")
        for n in names:
            spec, opset, dynamic = parse_variant(n)
            dims = spec.dyn_dims if dynamic else spec.static_dims
            shapes = " ".join(f"{i}{list(_shape(t, dims))}" for i, _, t in spec.inputs)
            state = "cached" if _complete(paths(n)) else "-"
            print(f"{n:26s} {state:7s} test at {shapes}  ({spec.notes})")
        return 0
    torch.set_num_threads(a.threads)
    t0 = time.time()
    result = build(names, force=a.force)
    print(f"{len(result)} models in {zoo_dir()} ({time.time() - t0:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
