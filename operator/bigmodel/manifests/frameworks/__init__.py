"""Each framework's launch contract, one module per framework behind `Contract`
(`contract`): `contract_of(spec.framework)` is the only place that maps a framework to its
contract."""

from __future__ import annotations

from types import MappingProxyType

from bigmodel.api.job import Framework
from bigmodel.manifests.frameworks.contract import (
    Contract,
    Launch,
    Member,
    OnFailure,
    Role,
    WhenDone,
)
from bigmodel.manifests.frameworks.pytorch import PyTorch
from bigmodel.manifests.frameworks.tensorflow import TensorFlow

CONTRACTS = MappingProxyType({Framework.PYTORCH: PyTorch(), Framework.TENSORFLOW: TensorFlow()})


def contract_of(framework: Framework) -> Contract:
    """The launch contract of `framework`."""
    return CONTRACTS[framework]


__all__ = ["Contract", "Launch", "Member", "OnFailure", "Role", "WhenDone", "contract_of"]
