"""Scene bundles: the format, the embedded default scene, dataset adapters."""
