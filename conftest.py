"""The conformance plugin is loaded through its pytest11 entry point (pip install -e .)."""

collect_ignore = ["fixtures"]
