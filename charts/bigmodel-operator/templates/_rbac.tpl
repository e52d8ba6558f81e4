{{/*
The operator's permissions, all in this file: only the resources and verbs it calls, no
wildcards, no escalate/bind/impersonate, no pods/exec. Reviewed against the allow-list in
tests/unit/test_chart_rbac.py; a change here must change that list too.
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
# kopf: watches its kinds and patches them (finalizer, progress annotations); the job
# controller deletes finished jobs after ttlSecondsAfterFinished.
- apiGroups: ["bigmodel.dev"]
  resources: ["bigmodeljobs"]
  verbs: ["get", "list", "watch", "patch", "delete"]
- apiGroups: ["bigmodel.dev"]
  resources: ["bigmodelservices"]
  verbs: ["get", "list", "watch", "patch"]
# Status is written through the status subresource (server-side apply); never spec.
- apiGroups: ["bigmodel.dev"]
  resources: ["bigmodeljobs/status", "bigmodelservices/status"]
  verbs: ["patch"]
# kopf.event and the controllers' events (core/v1 Events).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
# Children: node pods and headless Services of jobs; Deployments and Services of services.
- apiGroups: [""]
  resources: ["pods", "services"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
{{- if .Values.rbac.gangScheduling }}
# Gang scheduling: a PodGroup per job for Volcano or the scheduler-plugins coscheduling plugin.
- apiGroups: ["scheduling.volcano.sh", "scheduling.x-k8s.io"]
  resources: ["podgroups"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
{{- end }}
{{- end -}}
