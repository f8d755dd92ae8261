"""The pipeline's stages, each a function of (config, input artifacts) → output artifacts."""
