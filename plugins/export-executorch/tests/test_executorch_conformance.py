"""modelport's conformance kit (modelport.testing), run exactly as a third-party plugin would run it."""

from modelport.testing import PluginConformance


class TestConformance(PluginConformance):
    plugin = "modelport_executorch"
    format = "executorch"
    heavy_modules = ("executorch",)
    models = ("cnn", "wrapper")
