"""One test per bug the reliability checks (tests/fuzz, tests/reliability,
tools/fuzz.py) found, named after the bug. Each failed before its fix."""
from __future__ import annotations

import ir


def test_regression_parser_deeply_nested_list_recursion_error():
    """`value=[[[[...` 5000 deep overflowed the parser's recursion (RecursionError)
    instead of raising ParseError."""
    text = "graph @g {\n  %0 = constant {value=" + "[" * 5000 + "} : f32[]\n}"
    try:
        ir.parse(text)
    except ir.ParseError as err:
        assert err.line == 2 and "nest" in str(err)
    else:
        raise AssertionError("a 5000-deep attribute list parsed")
