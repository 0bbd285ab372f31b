"""A model file for `propc show` tests."""
import propc as pc


def layer(x, W):
    return pc.tanh(x @ W)


def loss(x, W, labels):
    return pc.nn.cross_entropy(x @ W, labels)


not_a_function = 3
