"""pydantic models of the CRDs (spec and status) and CRD generation.

The models are the source of truth of the API: `bigmodel crds` writes `crds/` from them, and
the controller parses bodies with `parse_resource`."""

from bigmodel.api.common import (
    API_VERSION,
    GROUP,
    JOB_KIND,
    JOB_PLURAL,
    SERVICE_KIND,
    SERVICE_PLURAL,
    VERSION,
)
from bigmodel.api.conditions import JOB_CONDITIONS, SERVICE_CONDITIONS, ConditionType, Reason
from bigmodel.api.core import PodPhase
from bigmodel.api.job import (
    BigModelJob,
    BigModelJobSpec,
    BigModelJobStatus,
    CleanPodPolicy,
    Framework,
    JobPhase,
    RestartPolicy,
)
from bigmodel.api.parsing import InvalidResourceError, error_messages, parse_resource
from bigmodel.api.service import (
    BigModelService,
    BigModelServiceSpec,
    BigModelServiceStatus,
    ScalingMetric,
    ServicePhase,
    ServingRuntime,
)
from bigmodel.api.status import Condition, ConditionStatus

__all__ = [
    "API_VERSION",
    "GROUP",
    "JOB_CONDITIONS",
    "JOB_KIND",
    "JOB_PLURAL",
    "SERVICE_CONDITIONS",
    "SERVICE_KIND",
    "SERVICE_PLURAL",
    "VERSION",
    "BigModelJob",
    "BigModelJobSpec",
    "BigModelJobStatus",
    "BigModelService",
    "BigModelServiceSpec",
    "BigModelServiceStatus",
    "CleanPodPolicy",
    "Condition",
    "ConditionStatus",
    "ConditionType",
    "Framework",
    "InvalidResourceError",
    "JobPhase",
    "PodPhase",
    "Reason",
    "RestartPolicy",
    "ScalingMetric",
    "ServicePhase",
    "ServingRuntime",
    "error_messages",
    "parse_resource",
]
