"""Source kinds: one module per kind, named after its ``type:`` key in config.yaml."""
