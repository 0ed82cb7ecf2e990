"""One adapter class per backend (see ``base.py``); ``conformance.impls`` names the implementations."""
