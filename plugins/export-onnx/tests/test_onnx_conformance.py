"""modelport's conformance kit (modelport.testing), run exactly as a third-party plugin would run it."""

from modelport.testing import PluginConformance


class TestConformance(PluginConformance):
    plugin = "modelport_onnx"
    format = "onnx"
    heavy_modules = ("onnx", "onnxruntime", "onnxslim", "onnxscript")
    models = ("cnn", "attention", "decoder")
