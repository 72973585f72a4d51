{{/*
Name prefix of the chart's objects: fullnameOverride, else the release name if it contains
"mcp", else "<release>-mcp". Cut to 38 characters so that "<prefix>-operator-metrics" and
"<prefix>-operator-leader-election" stay valid names.
*/}}
{{- define "mcp.fullname" -}}
{{- $name := .Values.fullnameOverride -}}
{{- if not $name -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- $name = .Release.Name -}}
{{- else -}}
{{- $name = printf "%s-%s" .Release.Name .Chart.Name -}}
{{- end -}}
{{- end -}}
{{- $name | trunc 38 | trimSuffix "-" -}}
{{- end -}}

{{/* The operator's objects: Deployment, ClusterRole, bindings. */}}
{{- define "mcp.operatorName" -}}
{{- printf "%s-operator" (include "mcp.fullname" .) -}}
{{- end -}}

{{/* The operator's ServiceAccount. */}}
{{- define "mcp.serviceAccountName" -}}
{{- .Values.serviceAccount.name -}}
{{- end -}}

{{/* The image of the operator, which it also passes to the dataplane: repository:tag. */}}
{{- define "mcp.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* The running version as a label value: the image tag, else appVersion. */}}
{{- define "mcp.version" -}}
{{- .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | trimSuffix "." | trimSuffix "_" -}}
{{- end -}}

{{/*
Labels of every object. app.kubernetes.io/name is always "mcp" (the chart's name): the
dataplane's NetworkPolicy admits the operator by name=mcp and component=operator.
*/}}
{{- define "mcp.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "mcp.selectorLabels" . }}
app.kubernetes.io/version: {{ include "mcp.version" . | quote }}
app.kubernetes.io/part-of: mcp
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Labels that select the operator's pods; they never change for a release. */}}
{{- define "mcp.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of the operator's objects and pods. */}}
{{- define "mcp.operatorLabels" -}}
{{ include "mcp.labels" . }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "mcp.operatorSelectorLabels" -}}
{{ include "mcp.selectorLabels" . }}
app.kubernetes.io/component: operator
{{- end -}}
