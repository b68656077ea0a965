"""The pipeline's shape and motion: PIPELINE, the runtime its agents share, running it."""
