"""Every registered case on the implementation chosen by --impl: the suite's template, run with the tests."""

from conformance.suite import test_case  # noqa: F401  (collected here)
