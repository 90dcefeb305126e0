"""The ``lakeplane`` command line: a thin adapter over the ``Lake`` facade."""
