"""modelport-publish-triton: write a modelport export into an NVIDIA Triton Inference Server model repository.

``modelport publish EXPORT_DIR triton://REPO_DIR[/NAME]`` writes ``NAME/config.pbtxt`` and
``NAME/<version>/<artifact>``: ONNX for the onnxruntime backend, OpenVINO IR for the openvino backend, TorchScript
for the pytorch (libtorch) backend, a TensorRT plan, and ``.pt2`` through a generated python-backend model.
Inputs and outputs (names, data types, dims) come from the export's metadata; a dynamic batch becomes
``max_batch_size`` with dynamic batching. Standard library only; nothing heavy is imported.
"""

from __future__ import annotations

from modelport import OptionSpec, PublisherSpec
from modelport.publishers.publishing import publisher_hooks

__version__ = "0.1.0"
SCHEME = "triton"

OPTIONS = (
    OptionSpec("name", "str", None, "model name in the repository (default: the target's NAME, else model_name)"),
    OptionSpec("version", "int", None, "version folder (default: one more than the highest there, starting at 1)"),
    OptionSpec("max_batch_size", "int", 8, "max_batch_size when the export's batch axis is dynamic"),
    OptionSpec("dynamic_batching", "bool", True, "enable Triton's dynamic batcher when the batch is dynamic"),
    OptionSpec("max_queue_delay_us", "int", 100, "dynamic batching: longest wait to fill a batch, in microseconds"),
    OptionSpec("instances", "int", 1, "model instances per device (instance_group count)"),
    OptionSpec("kind", "choice", "auto", "where instances run: auto (GPU for TensorRT, CPU otherwise), cpu, gpu",
               choices=("auto", "cpu", "gpu")),
)

SPEC = PublisherSpec(
    scheme=SCHEME,
    display_name="Triton model repository",
    options=OPTIONS,
    description="triton://REPO_DIR[/NAME]: NAME/config.pbtxt + NAME/<version>/<artifact> for tritonserver --model-repository",
)

# register_publishers declares triton://; publish answers triton:// targets with modelport_publish_triton.repository
register_publishers, publish, pull = publisher_hooks(SPEC, "modelport_publish_triton.repository")
