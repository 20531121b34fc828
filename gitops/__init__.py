"""gitops: declarative GitOps deployments for Kubernetes and Docker Swarm."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gitops")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
