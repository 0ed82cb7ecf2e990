"""The data model and what reads and writes it: ``schema`` (the shapes), ``target`` (what a run tested),
``fingerprint`` (behaviour, diffs, migrations), ``diffreport`` and ``reports`` (what people read),
``files`` (reading safely, writing atomically).
"""
