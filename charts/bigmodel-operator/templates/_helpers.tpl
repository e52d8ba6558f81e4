{{/* Names, labels and small values shared by the templates. */}}

{{/* Chart name, or nameOverride. */}}
{{- define "bigmodel-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Prefix of every object name: fullnameOverride, `<release>` when it already contains the
chart name, else `<release>-<name>`; at most 63 characters. */}}
{{- define "bigmodel-operator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "bigmodel-operator.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* `name-version` of the chart, for the helm.sh/chart label. */}}
{{- define "bigmodel-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels selecting the operator pod. They never change across upgrades (a Deployment's
selector is immutable). */}}
{{- define "bigmodel-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bigmodel-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every object of the chart. */}}
{{- define "bigmodel-operator.labels" -}}
helm.sh/chart: {{ include "bigmodel-operator.chart" . }}
{{ include "bigmodel-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: bigmodel-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The ServiceAccount the operator runs as. */}}
{{- define "bigmodel-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "bigmodel-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* `repository:tag` (tag defaulting to appVersion) or `repository@digest`. */}}
{{- define "bigmodel-operator.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The watched namespaces, de-duplicated and sorted (empty: cluster-wide). */}}
{{- define "bigmodel-operator.watchNamespaces" -}}
{{- .Values.watch.namespaces | uniq | sortAlpha | toJson -}}
{{- end -}}

{{/* Labels of the monitoring objects: the chart's plus monitoring.labels. */}}
{{- define "bigmodel-operator.monitoringLabels" -}}
{{ include "bigmodel-operator.labels" . }}
{{- with .Values.monitoring.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Where Prometheus looks for the pods the operator manages: the watched namespaces, or all. */}}
{{- define "bigmodel-operator.workloadNamespaceSelector" -}}
{{- $namespaces := include "bigmodel-operator.watchNamespaces" . | fromJsonArray -}}
{{- if $namespaces -}}
matchNames:
{{- toYaml $namespaces | nindent 2 }}
{{- else -}}
any: true
{{- end -}}
{{- end -}}
