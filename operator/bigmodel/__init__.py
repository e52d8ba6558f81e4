"""bigmodel-operator: torchrun training jobs and model services on Kubernetes, measured."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bigmodel-operator")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"
