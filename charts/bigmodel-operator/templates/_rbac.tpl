{{/*
The operator's permissions, all in this file: only the resources and verbs it calls, no
wildcards, no escalate/bind/impersonate, no pods/exec. Reviewed against the allow-list in
tests/unit/test_chart_rbac.py; a change here must change that list too. The request log of
tests/integration/test_rbac.py checks both ways that the operator uses exactly these.
*/}}

{{/* Cluster-scoped resources: always a ClusterRole, even when namespaces are listed. */}}
{{- define "bigmodel-operator.clusterRules" -}}
# kopf: discovers the served resources at startup and watches CRDs to rescan when one changes.
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
{{- if .Values.watch.namespaces }}
# kopf: with a list of namespaces it lists and watches namespaces to see them come and go
# (without it, it assumes they exist and logs a warning).
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
{{- end }}
{{- if .Values.rbac.listNodes }}
# Job controller: refuses a job that asks for more GPUs per node than the largest node has.
- apiGroups: [""]
  resources: ["nodes"]
  verbs: ["list"]
{{- end }}
{{- end -}}

{{/* Namespaced resources: a ClusterRole when cluster-wide, else a Role in each namespace. */}}
{{- define "bigmodel-operator.namespacedRules" -}}
# kopf: lists and watches its kinds and patches them (finalizer, progress annotations); the
# job controller deletes finished jobs after ttlSecondsAfterFinished. No get: kopf reads the
# jobs from its watch.
- apiGroups: ["bigmodel.dev"]
  resources: ["bigmodeljobs"]
  verbs: ["list", "watch", "patch", "delete"]
- apiGroups: ["bigmodel.dev"]
  resources: ["bigmodelservices"]
  verbs: ["list", "watch", "patch"]
# Status is written through the status subresource (server-side apply); never spec.
- apiGroups: ["bigmodel.dev"]
  resources: ["bigmodeljobs/status", "bigmodelservices/status"]
  verbs: ["patch"]
# kopf.event and the job controller's events (core/v1 Events).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
# Node pods: kopf's pod index lists and watches them; the job controller creates them and
# deletes them on gang restarts, suspension, deadlines and clean-up. Never patched. The
# service controller only watches its replicas (the Deployment creates them).
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch", "create", "delete"]
# A headless Service per job, created once; a ClusterIP Service per BigModelService, applied
# (server-side apply: patch) when its spec changes and watched by the service controller's
# index. The garbage collector deletes them with their owner (owner reference).
- apiGroups: [""]
  resources: ["services"]
  verbs: ["list", "watch", "create", "patch"]
# The Deployment of each BigModelService: applied (server-side apply: patch) with the
# replica count and pod template, watched by the service controller's index, deleted by the
# garbage collector with the service.
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["list", "watch", "patch"]
{{- if .Values.rbac.gangScheduling }}
# Gang scheduling: a PodGroup per job for Volcano or the scheduler-plugins coscheduling
# plugin, created with the job's pods (where the cluster serves that API) and deleted by the
# garbage collector with the job. The sandbox serves neither API, so tests/integration/
# test_rbac.py cannot see this call: it lists it as unreached, with this reason.
- apiGroups: ["scheduling.volcano.sh", "scheduling.x-k8s.io"]
  resources: ["podgroups"]
  verbs: ["create"]
{{- end }}
{{- end -}}
