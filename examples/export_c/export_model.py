"""Train the `propc demo` MLP and export its classifier for C (see README.md).

    python export_model.py -o build [demo options, e.g. --quick]

Trains exactly as `propc demo` with the same options does (same split, seed,
initial weights, shuffles and compiled train step), then writes into the output
directory:
- digits.so / digits.o / digits.h / digits.json: `digits_run(x, logits, workspace)`,
  the trained network with its weights compiled in as constants, for the whole
  test set at once (x: float32[N, 64], logits: float32[N, 10]);
- digits_test.bin: N, then the N test images (float32) and labels (int32).
"""
import argparse
import os
import struct
import sys

import numpy as np

import propc as pc
from propc import demo, demo_common, demo_mlp
from propc.datasets import load_digits, train_test_split


def train_like_demo(options):
    """The demo's training run (propc/demo_mlp.py `run_mlp`, sections 1-3, silently):
    the trained parameters and the test set."""
    lr = demo_mlp.DEFAULT_LR[options.optimizer] if options.lr is None else options.lr
    epochs = 3 if options.quick else options.epochs
    x, y = load_digits()
    x_train, y_train, x_test, y_test = train_test_split(x, y, 0.2, options.seed)
    params = pc.nn.init_mlp([x.shape[1], *options.hidden, 10], seed=options.seed)
    state = demo_mlp.initial_state(options.optimizer, params)
    step = pc.compile(demo_mlp.make_step(options.optimizer, lr))
    batch = min(options.batch, len(x_train))
    history = demo_common.train(step, params, state, x_train, y_train, batch, epochs,
                                options.seed, pc.compile(demo_mlp.predict), lambda line: None)
    return history["params"], x_test, y_test


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default="build", help="output directory")
    options, demo_argv = parser.parse_known_args(argv)
    demo_options = demo.build_parser().parse_args(demo_argv)
    params, x_test, y_test = train_like_demo(demo_options)

    def classify(images):
        return demo_mlp.predict(params, images)  # params are NumPy arrays: compiled in

    pc.export(classify, pc.ShapeDtype(x_test.shape), path=options.output, name="digits")
    with open(os.path.join(options.output, "digits_test.bin"), "wb") as handle:
        handle.write(struct.pack("<i", len(x_test)))
        handle.write(np.ascontiguousarray(x_test, np.float32).tobytes())
        handle.write(np.ascontiguousarray(y_test, np.int32).tobytes())
    accuracy = demo_common.accuracy(pc.compile(demo_mlp.predict)(params, x_test), y_test)
    print(f"exported to {options.output}/digits.so; in Python, test accuracy: {accuracy:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
