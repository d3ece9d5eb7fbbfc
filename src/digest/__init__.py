"""digest: featured-story email digests for news publishers.

The packages, in the order a send flows through them (docs/architecture.md):
store → mail, infra → readers, stories, staff → editions → delivery → feedback, observe
→ actions → worker → web, cli. Each package's public interface is its __init__.py.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("digest")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
