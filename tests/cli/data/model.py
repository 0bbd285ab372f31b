"""A model file for `propc show` tests."""
import propc as pc


def layer(x, W):
    return pc.tanh(x @ W)


def loss(x, W, labels):
    return pc.nn.cross_entropy(x @ W, labels)


def mlp(params, inputs):
    h = inputs["x"]
    for W, b in params:
        h = pc.tanh(h @ W + b)
    return h.sum()


not_a_function = 3
