"""The generic template: every registered case, on the implementation chosen by --impl.

The plugin parametrizes ``case`` from the registry (conformance/cases), so a
test ID is the case ID, e.g. ``test_case[notebook-dropout-121-params]``.
"""


def test_case(case, conformance):
    conformance(case)
