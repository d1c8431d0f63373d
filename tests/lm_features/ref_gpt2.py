#!/usr/bin/env python3
"""Reference GPT-2 for the lm_features tests (numpy only, float64).

  ref_gpt2.py model DIR [--n_embd 48 --n_head 4 --n_layer 3 --n_ctx 64 --vocab 300
                         --dtype f32|f16|bf16 --prefix --act gelu_new --seed 1 --std 0.1]
      writes DIR/config.json, DIR/model.safetensors (the gpt2 tensor names and
      Conv1D [in, out] layout, written by hand: safetensors is 8 bytes of
      header length, a JSON header, then the raw little-endian data), and a
      byte-level tokenizer with no merges (DIR/vocab.json, DIR/merges.txt:
      token i = byte i through GPT-2's bytes_to_unicode).
  ref_gpt2.py hidden DIR TOKENS OUT.npy
      hidden states [n_layer + 1, T, C] of the token ids in TOKENS (one per
      line), numbered as transformers' output_hidden_states.
  ref_gpt2.py features DIR WORDS OUT.npy --layers 0 2 --pool last --context 16 --stride 4
      lm_features' output for the words in WORDS (one per line) with the
      byte tokenizer: word i > 0 is " " + word; window rule of the README.

The weights are read back from the file (so f16/bf16 are the rounded
values) and the forward pass follows transformers' GPT2Model in float64.
"""
import json
import math
import sys

import numpy as np


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def names(L):
    out = [("wte.weight", "V,C"), ("wpe.weight", "P,C")]
    for l in range(L):
        for n, s in [("ln_1.weight", "C"), ("ln_1.bias", "C"), ("attn.c_attn.weight", "C,3C"), ("attn.c_attn.bias", "3C"),
                     ("attn.c_proj.weight", "C,C"), ("attn.c_proj.bias", "C"), ("ln_2.weight", "C"), ("ln_2.bias", "C"),
                     ("mlp.c_fc.weight", "C,4C"), ("mlp.c_fc.bias", "4C"), ("mlp.c_proj.weight", "4C,C"),
                     ("mlp.c_proj.bias", "C")]:
            out.append((f"h.{l}.{n}", s))
    return out + [("ln_f.weight", "C"), ("ln_f.bias", "C")]


def write_model(d, a):
    import os
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(a["seed"])
    C, L = a["n_embd"], a["n_layer"]
    dims = {"V": a["vocab"], "P": a["n_ctx"], "C": C, "3C": 3 * C, "4C": 4 * C}
    tensors = {}
    for n, s in names(L):
        shape = [dims[x] for x in s.split(",")]
        if n.endswith("ln_1.weight") or n.endswith("ln_2.weight") or n == "ln_f.weight":
            v = 1 + 0.2 * rng.standard_normal(shape)
        elif n.endswith("bias"):
            v = 0.1 * rng.standard_normal(shape)
        else:
            v = a["std"] * rng.standard_normal(shape)
        tensors[n] = v
    if a["extra"]:  # what older checkpoints carry besides the weights: ignored
        for l in range(L):
            tensors[f"h.{l}.attn.bias"] = np.tril(np.ones((1, 1, a["n_ctx"], a["n_ctx"])))
    prefix = "transformer." if a["prefix"] else ""
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    code = {"f32": "F32", "f16": "F16", "bf16": "BF16"}[a["dtype"]]
    for n in sorted(tensors):
        v = tensors[n].astype(np.float32)
        if a["dtype"] == "f16":
            raw = v.astype("<f2").tobytes()
        elif a["dtype"] == "bf16":  # round to nearest even on the top 16 bits
            u = v.view(np.uint32).astype(np.uint64)
            u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2")
            raw = u.tobytes()
        else:
            raw = v.astype("<f4").tobytes()
        header[prefix + n] = {"dtype": code, "shape": list(v.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(f"{d}/model.safetensors", "wb") as f:
        f.write(len(h).to_bytes(8, "little"))
        f.write(h)
        for b in blobs:
            f.write(b)
    cfg = {"model_type": "gpt2", "n_embd": C, "n_layer": L, "n_head": a["n_head"], "n_positions": a["n_ctx"],
           "n_ctx": a["n_ctx"], "vocab_size": a["vocab"], "layer_norm_epsilon": 1e-5,
           "activation_function": a["act"], "architectures": ["GPT2LMHeadModel"]}
    json.dump(cfg, open(f"{d}/config.json", "w"), indent=1)
    b2u = bytes_to_unicode()
    json.dump({b2u[b]: b for b in range(256)}, open(f"{d}/vocab.json", "w"), ensure_ascii=False)
    open(f"{d}/merges.txt", "w").write("#version: 0.2\n")


def read_model(d):
    cfg = json.load(open(f"{d}/config.json"))
    raw = open(f"{d}/model.safetensors", "rb").read()
    n = int.from_bytes(raw[:8], "little")
    hdr = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    w = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        buf = data[b:e]
        if v["dtype"] == "F32":
            x = np.frombuffer(buf, "<f4")
        elif v["dtype"] == "F16":
            x = np.frombuffer(buf, "<f2")
        else:
            x = (np.frombuffer(buf, "<u2").astype(np.uint32) << 16).view(np.float32)
        w[k.removeprefix("transformer.")] = x.astype(np.float64).reshape(v["shape"])
    return cfg, w


def ln(x, g, b, eps):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * g + b


def act(x, name):
    if name in ("gelu_new", "gelu_pytorch_tanh"):
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    if name == "gelu":
        from scipy.special import erf
        return 0.5 * x * (1 + erf(x / math.sqrt(2)))
    return np.maximum(x, 0)


def hidden(cfg, w, tok):
    C, H, L, eps = cfg["n_embd"], cfg["n_head"], cfg["n_layer"], cfg["layer_norm_epsilon"]
    T, d = len(tok), C // H
    x = w["wte.weight"][tok] + w["wpe.weight"][:T]
    hs = [x]
    mask = np.tril(np.ones((T, T), bool))
    for l in range(L):
        p = lambda n: w[f"h.{l}.{n}"]
        a = ln(x, p("ln_1.weight"), p("ln_1.bias"), eps)
        qkv = a @ p("attn.c_attn.weight") + p("attn.c_attn.bias")
        q, k, v = np.split(qkv, 3, axis=1)
        y = np.zeros((T, C))
        for h in range(H):
            s = slice(h * d, (h + 1) * d)
            sc = q[:, s] @ k[:, s].T / math.sqrt(d)
            sc = np.where(mask, sc, -np.inf)
            sc = np.exp(sc - sc.max(1, keepdims=True))
            sc /= sc.sum(1, keepdims=True)
            y[:, s] = sc @ v[:, s]
        x = x + y @ p("attn.c_proj.weight") + p("attn.c_proj.bias")
        m = ln(x, p("ln_2.weight"), p("ln_2.bias"), eps)
        x = x + act(m @ p("mlp.c_fc.weight") + p("mlp.c_fc.bias"), cfg["activation_function"]) @ p(
            "mlp.c_proj.weight") + p("mlp.c_proj.bias")
        hs.append(x)
    hs[-1] = ln(x, w["ln_f.weight"], w["ln_f.bias"], eps)
    return np.stack(hs)


def features(cfg, w, words, layers, pool, context, stride):
    L = cfg["n_layer"]
    layers = [l + L + 1 if l < 0 else l for l in layers] or list(range(L + 1))
    stride = stride or max(context // 2, 1)
    toks, bounds = [], []
    for i, wd in enumerate(words):
        b = len(toks)
        toks += list((" " + wd if i else wd).encode())
        bounds.append((b, len(toks)))
    out = []
    for b, e in bounds:
        if e <= context:
            s = 0
        else:
            s = -(-(e - context) // stride) * stride
            s = min(s, b)
            s = max(s, e - context)
        hs = hidden(cfg, w, toks[s:e])  # causal: tokens after e change nothing
        lo = max(b, s)
        row = [hs[l][e - 1 - s] if pool == "last" else hs[l][lo - s:e - s].mean(0) for l in layers]
        out.append(np.concatenate(row))
    return np.array(out)


def main():
    cmd, d = sys.argv[1], sys.argv[2]
    if cmd == "model":
        a = {"n_embd": 48, "n_head": 4, "n_layer": 3, "n_ctx": 64, "vocab": 300, "dtype": "f32", "prefix": False,
             "act": "gelu_new", "seed": 1, "std": 0.1, "extra": False}
        args = sys.argv[3:]
        i = 0
        while i < len(args):
            k = args[i][2:]
            if k in ("prefix", "extra"):
                a[k] = True
                i += 1
                continue
            a[k] = type(a[k])(args[i + 1]) if not isinstance(a[k], str) else args[i + 1]
            i += 2
        write_model(d, a)
    elif cmd == "hidden":
        cfg, w = read_model(d)
        tok = [int(x) for x in open(sys.argv[3]).read().split()]
        np.save(sys.argv[4], hidden(cfg, w, tok))
    elif cmd == "features":
        cfg, w = read_model(d)
        words = open(sys.argv[3], encoding="utf-8").read().split("\n")
        words = [x for x in words if x]
        args = sys.argv[5:]
        li = args.index("--layers")
        layers = []
        for x in args[li + 1:]:
            if x.startswith("--"):
                break
            layers.append(int(x))
        get = lambda k, t: t(args[args.index(k) + 1])
        np.save(sys.argv[4], features(cfg, w, words, layers, get("--pool", str), get("--context", int),
                                      get("--stride", int)))


if __name__ == "__main__":
    main()
