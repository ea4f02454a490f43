"""The README's Python example, as a script the tests run: export two formats, validate, publish.

    python examples/quickstart.py      # from any folder; writes exports/cnn/ and registry/ there

Everything below the marker line is the README's snippet, character for character (tests/test_examples.py
checks it).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # examples/models.py, whatever the current folder

# ---- README snippet ----
import modelport
from models import small_cnn  # examples/models.py: any nn.Module will do

result = modelport.export(small_cnn(), formats=["onnx", "pt2"], inputs=modelport.vision(3, 32, 32, dynamic_batch=True),
                          output_dir="exports/cnn", task="classification", class_names=[str(i) for i in range(10)],
                          force=True)
for fmt, r in result.items():
    print(fmt, r.status, f"max abs diff {r.validation.max_abs_diff:.1e}", r.artifact_path)
published = modelport.publish(result["onnx"].path, "file://registry", force=True)
print("published to", published.url)
