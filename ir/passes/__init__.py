"""IR -> IR passes. Importing the package fills every per-primitive table of the
passes: the modules below register rows into tables defined by the modules they
import, never the other way round (ir/passes/vjp_window.py and vjp_control.py into
vjp_rules' VJP_RULES and FORWARD_RULES, batch_control.py into batch_rules'
BATCH_RULES, cost_control.py into cost's COST_RULES)."""
from . import vjp_window  # noqa: F401
from . import vjp_control  # noqa: F401  (the control-flow VJP and forward rules)
from . import batch_control  # noqa: F401  (batching rules of scan and cond)
from . import cost_control  # noqa: F401  (cost rules of scan, cond and while_loop)
