"""Whole streams as arrays: stack(path, field) -> X, y, context."""
import numpy as np

from .stream import read

_SCALARS = (bool, int, float, str, np.generic)


def _lookup(m, field):
    v = m
    for part in field.split("."):
        if not isinstance(v, dict) or part not in v:
            return None
        v = v[part]
    return v


def _column(values):
    """A 1-D array of per-message values; None where a message lacks it."""
    if any(v is None for v in values):
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out
    return np.array(values)


def stack(source, field="x", kind=None, label="label"):
    """Stacks one field of every message of a stream (those of `kind`, when
    given, and that carry the field) into arrays:

    X        numpy array [N, ...]: the field of each message (a tensor, or a
             number such as "values.accuracy" of metrics: dots walk nested maps)
    y        int64 [N]: each message's `label` (-1 where a message has none),
             or None when no message has one
    context  dict name -> array [N] of every other scalar field (seq, t,
             index, split, epoch, subject, ...); an object array with None
             where some messages lack the field

    Tensors of different shapes cannot be stacked (spike events, for one):
    a ValueError names the first two shapes."""
    xs, ys, ctx = [], [], []
    for m in read(source):
        if kind is not None and m.get("kind") != kind:
            continue
        v = _lookup(m, field)
        if v is None:
            continue
        if not isinstance(v, (np.ndarray,) + _SCALARS):
            raise ValueError("field %r of message %d is a %s, not a tensor or a number"
                             % (field, len(xs), type(v).__name__))
        if isinstance(v, np.ndarray) and xs and np.shape(xs[0]) != v.shape:
            raise ValueError("field %r: message %d has shape %s, the first had %s: cannot stack"
                             % (field, len(xs), list(v.shape), list(np.shape(xs[0]))))
        xs.append(v)
        ys.append(m.get(label))
        ctx.append({k: w for k, w in m.items()
                    if k not in (field, label, "kind") and isinstance(w, _SCALARS)})
    if not xs:
        raise ValueError("no message%s carries the field %r" % (" of kind %r" % kind if kind else "", field))
    X = np.stack([np.asarray(x) for x in xs])
    y = None
    if any(v is not None for v in ys):
        y = np.array([-1 if v is None else int(v) for v in ys], dtype=np.int64)
    names = []
    for c in ctx:
        names += [k for k in c if k not in names]
    context = {k: _column([c.get(k) for c in ctx]) for k in names}
    return X, y, context
