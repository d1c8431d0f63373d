"""Running pipelines from Python: run(pipeline, **sets) -> Outputs."""
import collections.abc
import json
import os
import shutil
import subprocess
import tempfile

import numpy as np

from .stream import read


class RunError(RuntimeError):
    """The CLI exited non-zero: .returncode (1 runtime error, 2 invalid
    pipeline or command line, 130 interrupted) and .stderr."""

    def __init__(self, returncode, stderr):
        self.returncode, self.stderr = returncode, stderr
        super().__init__("myelin run exited with %d:\n%s" % (returncode, stderr.strip()))


def load(path):
    """A result file as Python data: .mpk -> list of messages, .npy -> array,
    .npz -> dict of arrays, .nii/.nii.gz -> nibabel image (when nibabel is
    there), anything else -> bytes."""
    p = os.fspath(path)
    if p.endswith(".mpk"):
        return list(read(p))
    if p.endswith(".npy"):
        return np.load(p)
    if p.endswith(".npz"):
        with np.load(p) as z:
            return dict(z)
    if p.endswith((".nii", ".nii.gz")):
        try:
            import nibabel as nib
            return nib.load(p)
        except ImportError:
            pass
    with open(p, "rb") as f:
        return f.read()


class Outputs(collections.abc.Mapping):
    """The files a run wrote under its OUT folder (new or changed ones),
    keyed by their path relative to it; each is loaded on first access
    (see load). Also: .out (the folder), .stdout, .stderr, .returncode,
    .path(name) (the full path)."""

    def __init__(self, out, names, proc):
        self.out, self._names, self._cache = out, names, {}
        self.stdout, self.stderr, self.returncode = proc.stdout, proc.stderr, proc.returncode

    def path(self, name):
        return os.path.join(self.out, name)

    def __getitem__(self, name):
        if name not in self._names:
            raise KeyError(name)
        if name not in self._cache:
            self._cache[name] = load(self.path(name))
        return self._cache[name]

    def __iter__(self):
        return iter(self._names)

    def __len__(self):
        return len(self._names)

    def __repr__(self):
        return "Outputs(%r, %r)" % (self.out, self._names)


def _yaml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v)  # JSON is YAML flow syntax
    if isinstance(v, np.generic):
        return str(v.item())
    return str(v)


def _snapshot(folder):
    seen = {}
    for root, _, files in os.walk(folder):
        for f in files:
            p = os.path.join(root, f)
            try:
                st = os.stat(p)
            except OSError:
                continue
            seen[os.path.relpath(p, folder)] = (st.st_mtime_ns, st.st_size)
    return seen


def find_cli():
    """The myelin CLI: $MYELIN_BIN, else `myelin` on PATH."""
    exe = os.environ.get("MYELIN_BIN") or shutil.which("myelin")
    if not exe:
        raise FileNotFoundError("myelin CLI not found: put it on PATH or set MYELIN_BIN")
    return exe


def run(pipeline, *, out=None, data=None, env=None, args=(), check=True, timeout=None, cli=None, **sets):
    """Runs a pipeline with the myelin CLI and returns its Outputs.

    pipeline  a pipeline file, or the YAML text itself (when it holds a newline)
    sets      stage params: run("isc.yaml", **{"isc.summary": "mean"}) or
              isc__summary="mean"; values in Python syntax (lists, bools)
    out       the OUT folder of the pipeline (every pipeline writes under
              ${OUT:-out}); default: a new temporary folder
    data      sets DATA (the pipeline's input)
    env       more environment variables; args: more CLI options (["--stats"])
    check     raise RunError when the CLI exits non-zero (else see .returncode)
    cli       the myelin executable (default $MYELIN_BIN, else PATH)"""
    exe = cli or find_cli()
    tmp_yaml = None
    if "\n" in pipeline:
        fd, tmp_yaml = tempfile.mkstemp(prefix="myelin-", suffix=".yaml")
        with os.fdopen(fd, "w") as f:
            f.write(pipeline)
        pipeline = tmp_yaml
    out = os.path.abspath(out if out is not None else tempfile.mkdtemp(prefix="myelin-out-"))
    os.makedirs(out, exist_ok=True)
    argv = [exe, "run", os.fspath(pipeline)]
    for key, v in sets.items():
        if "." not in key:
            if "__" not in key:
                raise TypeError("run(): %r is not ID.PARAM (or ID__PARAM)" % key)
            key = key.replace("__", ".", 1)
        argv += ["--set", "%s=%s" % (key, _yaml_value(v))]
    argv += list(args)
    e = dict(os.environ)
    e["OUT"] = out
    if data is not None:
        e["DATA"] = os.fspath(data)
    e.update(env or {})
    before = _snapshot(out)
    try:
        proc = subprocess.run(argv, env=e, capture_output=True, text=True, timeout=timeout)
    finally:
        if tmp_yaml:
            os.unlink(tmp_yaml)
    if check and proc.returncode != 0:
        raise RunError(proc.returncode, proc.stderr)
    after = _snapshot(out)
    names = sorted(k for k, v in after.items() if before.get(k) != v)
    return Outputs(out, names, proc)
