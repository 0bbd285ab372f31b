"""Train a 64-64-10 MLP on the bundled digits with one compiled train step."""
import sys

import numpy as np

import propc as pc
from propc.datasets import load_digits, train_test_split


def predict(params, x):
    for W, b in params[:-1]:
        x = pc.tanh(x @ W + b)
    W, b = params[-1]
    return x @ W + b


def loss(params, x, labels):
    return pc.nn.cross_entropy(predict(params, x), labels)


@pc.compile
def train_step(params, x, labels):
    value, grads = pc.value_and_grad(loss)(params, x, labels)
    return pc.optim.sgd(params, grads, 0.1), value


def main(epochs: int = 10, batch: int = 32) -> float:
    x_train, y_train, x_test, y_test = train_test_split(*load_digits(), seed=0)
    params = pc.nn.init_mlp([64, 64, 10], seed=0)
    rng = np.random.default_rng(0)
    for epoch in range(epochs):
        order = rng.permutation(len(x_train))
        for start in range(0, len(order) - batch + 1, batch):
            idx = order[start:start + batch]
            params, value = train_step(params, x_train[idx], y_train[idx])
        print(f"epoch {epoch + 1}: loss {float(value):.4f}")
    accuracy = np.mean(np.argmax(pc.compile(predict)(params, x_test), axis=1) == y_test)
    print(f"test accuracy: {accuracy:.3f}")
    return float(accuracy)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
