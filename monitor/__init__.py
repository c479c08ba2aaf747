"""monitor: a public-opinion (舆情) monitoring daemon.

The core package: configuration, storage, the shared HTTP client, the source contract and registry,
the per-source runner, the daemon and the command line.
"""

__version__ = "0.1.0"
