"""The load generator behind ``vigil loadgen``: simulated chat users on the project's client.

``stats`` is pure arithmetic over what the users saw (percentiles, rates, errors by kind);
``users`` drives the connections; ``command`` is the CLI with its progress display.
"""
