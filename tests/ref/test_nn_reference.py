"""Reference test of the nn area: training steps of finmaas networks against NumPy.

For several small networks (an MLP 5-4-3-1 with tanh hidden layers and a sigmoid output trained by
Adam with binary cross-entropy, sample weights and L2; a relu softmax classifier; a sigmoid
regression MLP trained by Nesterov SGD; a logistic regression trained by GD) this script draws
weights and data, runs tests/tools/nn_train_steps.c (env FM_TOOLS names the directory holding it)
and re-implements the same steps here independently in NumPy: forward pass, the losses from their
textbook formulas, backpropagation written from the chain rule on pre-activations, the L2 penalty
and the Keras update rules. The per-step objectives and the final parameters must agree to 1e-10
relative.
"""
import os
import subprocess
import sys

import numpy as np

TOOLS = os.environ.get("FM_TOOLS", os.path.join(os.path.dirname(__file__), "..", "..", "build",
                                                "tests"))
TOOL = os.path.join(TOOLS, "nn_train_steps")
TOLERANCE = 1e-10


def activation(z, name):
    if name == "identity":
        return z
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    raise ValueError(name)


def activation_backward(dout, z, name):
    """dL/dz from dL/da where a = activation(z)."""
    a = activation(z, name)
    if name == "identity":
        return dout
    if name == "sigmoid":
        return dout * a * (1.0 - a)
    if name == "tanh":
        return dout * (1.0 - a * a)
    if name == "relu":
        return dout * (z > 0)
    if name == "softmax":
        # Jacobian of softmax: diag(a) - a a^T per row
        return np.einsum("bk,bkj->bj", dout, np.einsum("bk,kj->bkj", a, np.eye(a.shape[1]))
                         - np.einsum("bk,bj->bkj", a, a))
    raise ValueError(name)


def loss_and_grad(z, y, w, loss):
    """Weighted mean loss L = sum w_b l_b / sum w_b of logits z, and dL/dz."""
    B, O = z.shape
    w = np.ones(B) if w is None else w
    if loss == "mse":
        rows = ((z - y) ** 2).mean(axis=1)
        drows = 2.0 * (z - y) / O
    elif loss == "binary_crossentropy":
        p = 1.0 / (1.0 + np.exp(-z))
        rows = (-(y * np.log(p) + (1 - y) * np.log(1 - p))).mean(axis=1)
        drows = (p - y) / O
    elif loss == "categorical_crossentropy":
        logp = z - z.max(axis=1, keepdims=True)
        logp = logp - np.log(np.exp(logp).sum(axis=1, keepdims=True))
        rows = -(y * logp).sum(axis=1)
        drows = np.exp(logp) * y.sum(axis=1, keepdims=True) - y
    else:
        raise ValueError(loss)
    return (w * rows).sum() / w.sum(), drows * (w / w.sum())[:, None]


def unpack(params, sizes):
    """Views W_l [I, O] and b_l [O] into the flat parameter array, in finmaas's layout."""
    layers, at = [], 0
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        W = params[at:at + fan_in * fan_out].reshape(fan_in, fan_out)
        at += fan_in * fan_out
        b = params[at:at + fan_out]
        at += fan_out
        layers.append((W, b))
    assert at == params.size
    return layers


def objective_and_gradient(params, sizes, hidden, loss, x, y, w, l2):
    layers = unpack(params, sizes)
    grads = np.zeros_like(params)
    glayers = unpack(grads, sizes)
    inputs, pre = [], []
    a = x
    for l, (W, b) in enumerate(layers):
        inputs.append(a)
        z = a @ W + b
        pre.append(z)
        a = activation(z, hidden) if l + 1 < len(layers) else z
    L, dz = loss_and_grad(pre[-1], y, w, loss)
    for l in range(len(layers) - 1, -1, -1):
        W, _ = layers[l]
        gW, gb = glayers[l]
        gW[:] = inputs[l].T @ dz
        gb[:] = dz.sum(axis=0)
        if l > 0:
            dz = activation_backward(dz @ W.T, pre[l - 1], hidden)
    penalty = 0.0
    for (W, _), (gW, _) in zip(layers, glayers):
        penalty += 0.5 * l2 * (W * W).sum()
        gW += l2 * W
    return L + penalty, grads


class Optimizer:
    """Keras 2 / tf.keras update rules."""

    def __init__(self, kind, lr, momentum, nesterov, beta1, beta2, eps, n):
        self.kind, self.lr, self.momentum, self.nesterov = kind, lr, momentum, nesterov
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.m, self.v, self.t = np.zeros(n), np.zeros(n), 0

    def step(self, p, g):
        self.t += 1
        if self.kind == "gd" or (self.kind == "sgd" and self.momentum == 0):
            return p - self.lr * g
        if self.kind == "sgd":
            self.m = self.momentum * self.m - self.lr * g
            if self.nesterov:
                return p + self.momentum * self.m - self.lr * g
            return p + self.m
        self.m = self.beta1 * self.m + (1 - self.beta1) * g
        self.v = self.beta2 * self.v + (1 - self.beta2) * g * g
        lr_t = self.lr * np.sqrt(1 - self.beta2 ** self.t) / (1 - self.beta1 ** self.t)
        return p - lr_t * self.m / (np.sqrt(self.v) + self.eps)


def run_case(name, rng, sizes, hidden, loss, opt, lr, momentum, nesterov, l2, steps, batch, nrows,
             weighted):
    beta1, beta2, eps = 0.9, 0.999, 1e-7
    nparams = sum(i * o + o for i, o in zip(sizes[:-1], sizes[1:]))
    params = np.empty(nparams)
    for W, b in unpack(params, sizes):
        limit = np.sqrt(6.0 / (W.shape[0] + W.shape[1]))
        W[:] = rng.uniform(-limit, limit, W.shape)
        b[:] = rng.uniform(-0.1, 0.1, b.shape)
    x = rng.normal(size=(nrows, sizes[0]))
    nout = sizes[-1]
    if loss == "binary_crossentropy":
        y = (rng.uniform(size=(nrows, nout)) < 0.5).astype(float)
    elif loss == "categorical_crossentropy":
        y = np.eye(nout)[rng.integers(0, nout, nrows)]
    else:
        y = rng.normal(size=(nrows, nout))
    w = rng.uniform(0.2, 3.0, nrows) if weighted else None

    tokens = [len(sizes), *sizes, hidden, loss, opt, lr, momentum, int(nesterov), beta1, beta2,
              eps, l2, steps, batch, nrows, int(weighted)]
    data = [params, x.ravel(), y.ravel()] + ([w] if weighted else [])
    text = " ".join(str(t) for t in tokens) + "\n" + "\n".join(
        " ".join(repr(float(v)) for v in arr) for arr in data) + "\n"
    proc = subprocess.run([TOOL], input=text, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        print(f"FAIL {name}: tool exited {proc.returncode}: {proc.stderr.strip()}")
        return False
    lines = proc.stdout.split("\n")
    got_losses = np.array([float(v) for v in lines[:steps]])
    got_params = np.array([float(v) for v in lines[steps].split()])

    optimizer = Optimizer(opt, lr, momentum, nesterov, beta1, beta2, eps, nparams)
    losses = np.empty(steps)
    p = params.copy()
    for k in range(steps):
        rows = slice((k % (nrows // batch)) * batch, (k % (nrows // batch) + 1) * batch)
        losses[k], g = objective_and_gradient(p, sizes, hidden, loss, x[rows], y[rows],
                                              None if w is None else w[rows], l2)
        p = optimizer.step(p, g)

    ok = True
    for label, got, want in (("objective per step", got_losses, losses),
                             ("final parameters", got_params, p)):
        if got.shape != want.shape:
            print(f"FAIL {name}: {label}: shape {got.shape} != {want.shape}")
            ok = False
            continue
        diff = np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want)))
        moved = np.max(np.abs(want - params)) if label == "final parameters" else float("nan")
        print(f"  {name:44s} {label:20s} max rel diff {diff:.3g}"
              + (f" (parameters moved up to {moved:.3g})" if moved == moved else ""))
        if not diff <= TOLERANCE:
            print(f"FAIL {name}: {label} differs by {diff:.3g} > {TOLERANCE}")
            ok = False
    return ok


def run_bad_input():
    """Malformed input must give exit status 2 and a message, never a crash."""
    ok = True
    cases = (
        "",                                      # empty
        "4 5 4",                                 # truncated widths
        "3 5 4 1 tanh binary_crossentropy adam 0.01 0 0 0.9 0.999 1e-7 0 2 4 8 0 1 2 3",  # data
        "1 5 tanh",                              # one width
        "3 5 0 1 tanh mse adam 0.1 0 0 .9 .999 1e-7 0 1 1 1 0",  # zero width
        "2 2 1 tanh hinge adam",                 # unknown loss
        "2 2 1 tanh mse adam 0.1 0 0 .9 .999 1e-7 0 1 2 3 0",    # rows not a multiple of batch
        "2 2 1 tanh mse adam x",                 # not a number
        "2 2 1 tanh mse adam -1 0 0 .9 .999 1e-7 0 1 1 1 0 1 1 1 1 1",  # bad learning rate
    )
    for text in cases:
        proc = subprocess.run([TOOL], input=text, capture_output=True, text=True, check=False)
        if proc.returncode != 2 or not proc.stderr.strip():
            print(f"FAIL malformed input {text[:30]!r}: exit {proc.returncode}")
            ok = False
    return ok


def main():
    rng = np.random.default_rng(20240607)
    results = [
        run_case("mlp 5-4-3-1 tanh binary adam l2 weighted", rng, [5, 4, 3, 1], "tanh",
                 "binary_crossentropy", "adam", 0.01, 0.0, False, 1e-3, 30, 8, 24, True),
        run_case("mlp 6-5-3 relu categorical adam", rng, [6, 5, 3], "relu",
                 "categorical_crossentropy", "adam", 0.05, 0.0, False, 0.0, 20, 10, 20, False),
        run_case("mlp 4-6-2 sigmoid mse sgd nesterov l2", rng, [4, 6, 2], "sigmoid", "mse", "sgd",
                 0.05, 0.9, True, 1e-2, 15, 6, 18, True),
        run_case("mlp 4-3-3-2 softmax mse sgd momentum", rng, [4, 3, 3, 2], "softmax", "mse",
                 "sgd", 0.1, 0.5, False, 0.0, 10, 5, 10, False),
        run_case("logistic 3-1 gd", rng, [3, 1], "relu", "binary_crossentropy", "gd", 0.5, 0.0,
                 False, 0.0, 10, 16, 16, False),
    ]
    results.append(run_bad_input())
    if not all(results):
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
