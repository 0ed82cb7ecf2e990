"""One adapter class per backend (see ``base.py``); ``conformance.backends.impls`` names the implementations."""
