"""modelport-publish-github: publish modelport exports as GitHub release assets, and pull them back.

``modelport publish EXPORT_DIR... github://OWNER/REPO@TAG`` creates the release for the tag (or reuses it)
and uploads the model files, metadata.json, export.json and a zip of each export folder, with release
notes generated from the metadata; assets already there with the same sha256 are skipped.
``modelport pull github://OWNER/REPO@TAG DIR`` downloads the zip and unpacks it. This module imports only
``modelport``; httpx loads inside the hooks.
"""

from __future__ import annotations

from modelport import OptionSpec, PublisherSpec, requires
from modelport.commands.listing import listing_hook
from modelport.publishers.publishing import publisher_hooks

__version__ = "0.1.0"
SCHEME = "github"

OPTIONS = (
    OptionSpec("draft", "bool", None, "create the release as a draft (on an existing release: change it)"),
    OptionSpec("prerelease", "bool", None, "mark the release as a pre-release (on an existing release: change it)"),
    OptionSpec("api_url", "str", None, "REST API root for GitHub Enterprise, e.g. https://ghe.example.com/api/v3 "
                                       "(default: GITHUB_API_URL or https://api.github.com)"),
    OptionSpec("license", "str", None, "license named in the release notes"),
    OptionSpec("name", "str", None, "release title (default: MODEL TAG)"),
    OptionSpec("target_commitish", "str", None, "branch or commit the tag is created from when it does not exist"),
    OptionSpec("folder", "str", None, "publish: folder prefix for several exports; pull: which export to download"),
    OptionSpec("retries", "int", 4, "retries of a call that hit a rate limit, HTTP 5xx or a dropped connection"),
    OptionSpec("checkpoint", "path", None, "PyTorch weights to attach as MODEL.safetensors (a .safetensors file, or a "
                                           "state dict read with weights_only and converted); works on an existing release"),
)

SPEC = PublisherSpec(
    scheme=SCHEME,
    display_name="GitHub Releases",
    options=OPTIONS,
    availability=requires("httpx", fix="pip install 'httpx>=0.27'"),
    can_pull=True,
    can_list=True,
    token_env=("GITHUB_TOKEN", "GH_TOKEN"),
    description="github://OWNER/REPO@TAG: release assets (model files, metadata, a zip per export); token from GITHUB_TOKEN",
)

# register_publishers declares github://; publish and pull answer github:// targets with modelport_publish_github.releases
register_publishers, publish, pull = publisher_hooks(SPEC, "modelport_publish_github.releases")
# list_models answers `modelport list github://OWNER/REPO` / `info github://OWNER/REPO/MODEL@TAG` (.listing)
list_models = listing_hook(SCHEME, "modelport_publish_github.listing")
