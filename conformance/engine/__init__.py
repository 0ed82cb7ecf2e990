"""The engine: cases are checked against oracles and expectations, one verdict each, in pytest.

``checks`` (what a case compares), ``oracles`` and ``precision`` (the float64 truth and the dtypes' arithmetic),
``expectations`` (the records), ``runner`` and ``verdict`` (one case, one verdict), ``plugin`` (pytest),
``surface`` (the public API recorded).  The cases themselves are ``conformance.cases``.
"""
