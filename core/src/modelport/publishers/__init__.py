"""Support for publisher plugins: bundles and model cards, the publish/pull hooks, retries."""
