"""IR -> IR passes. Importing the package fills every per-primitive table of the
passes: ir/passes/vjp_window.py adds the window and index primitives' VJP rules to
vjp_rules.VJP_RULES (it imports vjp_rules, never the other way round)."""
from . import vjp_window  # noqa: F401

from . import vjp_control  # noqa: E402,F401  (registers the control-flow VJP rules)
from . import batch_control  # noqa: E402,F401  (batching rules of scan and cond)
