"""modelport's conformance kit (modelport.testing), run exactly as a third-party plugin would run it."""

from modelport.testing import PluginConformance


class TestConformance(PluginConformance):
    plugin = "modelport_tflite"
    format = "tflite"
    heavy_modules = ("litert_torch", "ai_edge_litert", "tensorflow")
    models = ("cnn",)
