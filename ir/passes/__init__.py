
from . import vjp_control  # noqa: E402,F401  (registers the control-flow VJP rules)
