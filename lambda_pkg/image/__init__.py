"""Container images for the strategy service, built without a daemon (ko and jib's way).

`ensure_image(...)` (lambda_pkg.image.build) writes an OCI image: a base pinned by
digest, a dependency layer from the same wheels as the Lambda zip, and a code layer,
each a deterministic tar. docs/service.md describes the builder; docs/CONTRACTS.md
section 11 its interface.
"""

from lambda_pkg.image.build import Image, LayerInfo, ensure_image

__all__ = ["Image", "LayerInfo", "ensure_image"]
