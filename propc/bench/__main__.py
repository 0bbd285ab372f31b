"""`python -m propc.bench ...`: the same as `propc bench ...` (the bench's workers are
launched this way, `python -m propc.bench --worker ...`)."""
from .command import main

raise SystemExit(main())
