"""modelport's conformance kit (modelport.testing), run exactly as a third-party plugin would run it."""

from modelport.testing import PluginConformance


class TestConformance(PluginConformance):
    plugin = "modelport_coreml"
    format = "coreml"
    heavy_modules = ("coremltools",)
    models = ("cnn", "wrapper")
    expect_validate = False  # Linux checks structure only
