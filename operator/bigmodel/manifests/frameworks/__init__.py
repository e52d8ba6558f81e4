"""Each framework's launch contract, one module per framework behind `Contract`
(`contract`): `contract_of(spec.framework)` is the only place that maps a framework to its
contract."""

from __future__ import annotations

from types import MappingProxyType

from bigmodel.api.job import Framework
from bigmodel.manifests.frameworks.contract import (
    Contract,
    Launch,
    Measure,
    Member,
    OnFailure,
    Role,
    RoleService,
    WhenDone,
)
from bigmodel.manifests.frameworks.dask import Dask
from bigmodel.manifests.frameworks.pytorch import PyTorch
from bigmodel.manifests.frameworks.spark import Spark
from bigmodel.manifests.frameworks.tensorflow import TensorFlow

CONTRACTS = MappingProxyType(
    {
        Framework.PYTORCH: PyTorch(),
        Framework.TENSORFLOW: TensorFlow(),
        Framework.DASK: Dask(),
        Framework.SPARK: Spark(),
    }
)


def contract_of(framework: Framework) -> Contract:
    """The launch contract of `framework`."""
    return CONTRACTS[framework]


__all__ = [
    "Contract",
    "Launch",
    "Measure",
    "Member",
    "OnFailure",
    "Role",
    "RoleService",
    "WhenDone",
    "contract_of",
]
