"""modelport-publish-hf: publish modelport exports to the Hugging Face Hub, and pull them back.

``modelport publish EXPORT_DIR... hf://OWNER/REPO[@REVISION]`` creates the repo if needed and uploads
the export folder(s) plus a generated model card in one commit; identical re-publishes make no commit.
``modelport pull hf://OWNER/REPO[/FOLDER][@REVISION] DIR`` downloads one export back. This module imports
only ``modelport``; huggingface_hub loads inside the hooks.
"""

from __future__ import annotations

from modelport import OptionSpec, PublisherSpec, requires
from modelport.commands.listing import listing_hook
from modelport.publishers.publishing import publisher_hooks

__version__ = "0.1.0"
SCHEME = "hf"

OPTIONS = (
    OptionSpec("private", "bool", False, "create the repo private (an existing repo keeps its visibility)"),
    OptionSpec("endpoint", "str", None, "Hub URL (default: HF_ENDPOINT or https://huggingface.co)"),
    OptionSpec("license", "str", None, "license id for the model card front matter (mit, apache-2.0...)"),
    OptionSpec("folder", "str", None, "folder in the repo: where to publish, or which export to pull"),
    OptionSpec("commit_message", "str", None, "commit summary (default: Publish MODEL (formats) with modelport)"),
    OptionSpec("retries", "int", 4, "retries of a call that hit HTTP 429/5xx or a dropped connection"),
    OptionSpec("checkpoint", "path", None, "PyTorch weights to publish beside the exports, as pytorch/model.safetensors "
                                           "(a .safetensors file, or a state dict read with weights_only and converted)"),
    OptionSpec("collection", "str", None, "add the repository to this collection (OWNER/SLUG, as in its URL)"),
)

SPEC = PublisherSpec(
    scheme=SCHEME,
    display_name="Hugging Face Hub",
    options=OPTIONS,
    availability=requires("huggingface_hub", fix="pip install 'huggingface_hub>=1.4'"),
    can_pull=True,
    can_list=True,
    token_env=("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"),
    description="hf://OWNER/REPO[@REVISION]: one commit with the export folder(s) and a model card; token from HF_TOKEN",
)

# register_publishers declares hf://; publish and pull answer hf:// targets with modelport_publish_hf.hub
register_publishers, publish, pull = publisher_hooks(SPEC, "modelport_publish_hf.hub")
# list_models answers `modelport list hf://OWNER` / `info hf://OWNER/REPO` with modelport_publish_hf.listing
list_models = listing_hook(SCHEME, "modelport_publish_hf.listing")
