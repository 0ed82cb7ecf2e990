"""Does the suite notice, and does it flake? Mutation testing of Keras (``selfcheck``) and flake hunting
(``flakes``).
"""
