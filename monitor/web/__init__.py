"""The web console and JSON API (FastAPI), served by `monitor run` or `monitor serve`."""
