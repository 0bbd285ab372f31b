
from . import vjp_control  # noqa: E402,F401  (registers the control-flow VJP rules)
from . import batch_control  # noqa: E402,F401  (batching rules of scan and cond)
