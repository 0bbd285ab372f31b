"""`propc demo`: train a model on the bundled digits with a compiled train step.

The command: its options, and the model they choose. The MLP (the default) is
propc/demo_mlp.py, `--model cnn` propc/demo_cnn.py, `--model rnn` propc/demo_rnn.py,
`--data-parallel` the MLP on MPI ranks (propc/demo_distributed.py); what they share
is propc/demo_common.py. Each prints what its compiled step contains, training
progress, accuracy, compiled-vs-interpreted agreement and speed; the last line is
`test accuracy: 0.xxx`.
"""
from __future__ import annotations

import argparse
from typing import Callable

from .usage import OneLineParser, UsageError


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="propc demo", description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=15, help="passes over the training set")
    p.add_argument("--hidden", type=int, nargs="+", default=[64],
                   help="hidden layer widths (default: 64)")
    p.add_argument("--batch", type=int, default=32, help="examples per step")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: 0.1 sgd, 0.05 momentum, 0.003 adam)")
    p.add_argument("--optimizer", choices=["sgd", "momentum", "adam"], default="sgd")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, init and shuffles")
    p.add_argument("--plot", metavar="FILE.png", help="save loss/accuracy curves (needs matplotlib)")
    p.add_argument("--quick", action="store_true", help="a seconds-long run (3 epochs)")
    p.add_argument("--data-parallel", action="store_true",
                   help="train on every MPI rank (run under mpiexec; needs propc[mpi]); "
                        "--batch is per rank")
    p.add_argument("--checkpoint", metavar="DIR",
                   help="--data-parallel: save checkpoints in DIR and resume from the newest")
    p.add_argument("--checkpoint-every", type=int, default=50, metavar="STEPS",
                   help="--data-parallel: steps between checkpoints (default 50)")
    p.add_argument("--model", choices=["mlp", "cnn", "rnn"], default="mlp",
                   help="mlp (default), cnn: a small CNN (propc/demo_cnn.py), or rnn: a "
                        "scanned tanh RNN reading rows (propc/demo_rnn.py, SGD only)")
    return p


def run(options: argparse.Namespace, out: Callable[[str], None] = print) -> float:
    """The MLP, RNN or data-parallel demo that `options` choose (the CNN's options are
    its own: `main` runs it); returns the test accuracy."""
    epochs = 3 if options.quick else options.epochs
    if epochs < 1 or options.batch < 1 or any(h < 1 for h in options.hidden):
        raise UsageError("--epochs, --batch and --hidden must be positive")
    if options.model == "rnn":
        if options.optimizer != "sgd" or len(options.hidden) != 1:
            raise UsageError("--model rnn trains with sgd and takes one --hidden width")
        from .demo_rnn import run_rnn
        return run_rnn(options, out)
    if options.data_parallel:
        from .demo_distributed import run_data_parallel
        return run_data_parallel(options, out)
    from .demo_mlp import run_mlp
    return run_mlp(options, out)


def main(argv: list[str]) -> int:
    import sys
    try:
        options = build_parser().parse_args(argv)
        if options.data_parallel and options.model != "mlp":
            raise UsageError("--data-parallel trains the MLP (--model mlp)")
        if options.model == "cnn":
            from .demo_cnn import run as run_cnn
            options.epochs_given = any(a.startswith("--epochs") for a in argv)
            run_cnn(options)
        else:
            run(options)
    except UsageError as err:
        print(f"propc demo: {err}", file=sys.stderr)
        return 2
    return 0
