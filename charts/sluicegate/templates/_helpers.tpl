{{/*
Name of the chart, shortened to 63 characters because label values allow no more.
*/}}
{{- define "sluicegate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Prefix of every object name. A release named like the chart (`helm install sluicegate ...`)
gives the plain names `sluicegate-operator`, `sluicegate-gateway` and so on. It is cut to
40 characters so that the longest suffix still fits the 63-character limit of names.
*/}}
{{- define "sluicegate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Labels of every object: the app.kubernetes.io set, the chart version and commonLabels.
*/}}
{{- define "sluicegate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "sluicegate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sluicegate
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels of one component. Call with (dict "root" $ "component" "operator").
*/}}
{{- define "sluicegate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sluicegate.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Labels of one component's objects: the common labels plus its selector labels.
*/}}
{{- define "sluicegate.componentLabels" -}}
{{ include "sluicegate.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Labels that the operator puts on the gateway pods and Service it creates. The operator
does not know the release name, so these leave out app.kubernetes.io/instance.
*/}}
{{- define "sluicegate.gatewaySelectorLabels" -}}
app.kubernetes.io/name: sluicegate
app.kubernetes.io/component: gateway
{{- end }}

{{- define "sluicegate.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (printf "%s-operator" (include "sluicegate.fullname" .)) .Values.operator.serviceAccount.name }}
{{- else }}
{{- required "operator.serviceAccount.name is required when operator.serviceAccount.create is false" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "sluicegate.gateway.serviceAccountName" -}}
{{- if .Values.gateway.serviceAccount.create }}
{{- default (printf "%s-gateway" (include "sluicegate.fullname" .)) .Values.gateway.serviceAccount.name }}
{{- else }}
{{- required "gateway.serviceAccount.name is required when gateway.serviceAccount.create is false" .Values.gateway.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Full reference of the sluicegate image: repository@digest when a digest is set, else
repository:tag, where an empty tag means the chart's appVersion.
*/}}
{{- define "sluicegate.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "sluicegate.ollamaImage" -}}
{{- printf "%s:%s" .Values.ollama.image.repository .Values.ollama.image.tag }}
{{- end }}

{{- define "sluicegate.postgresql.fullname" -}}
{{- printf "%s-postgresql" (include "sluicegate.fullname" .) }}
{{- end }}

{{/*
Secret and key that hold the ledger DSN: the chart's own Secret with bundled PostgreSQL,
else the Secret named in postgresql.external.dsnSecretRef.
*/}}
{{- define "sluicegate.ledgerSecretName" -}}
{{- if .Values.postgresql.bundled.enabled }}
{{- printf "%s-ledger" (include "sluicegate.fullname" .) }}
{{- else }}
{{- required "postgresql.external.dsnSecretRef.name is required when postgresql.bundled.enabled is false" .Values.postgresql.external.dsnSecretRef.name }}
{{- end }}
{{- end }}

{{- define "sluicegate.ledgerSecretKey" -}}
{{- if .Values.postgresql.bundled.enabled }}
{{- print "url" }}
{{- else }}
{{- .Values.postgresql.external.dsnSecretRef.key }}
{{- end }}
{{- end }}

{{/*
The fleet configuration that the operator reads from --fleet-config. Its shape is the
contract with sluicegate.operator; a chart test parses it.
*/}}
{{- define "sluicegate.fleetConfig" -}}
gateway:
  image: {{ include "sluicegate.image" . | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  replicas: {{ .Values.gateway.replicas }}
  autoscaling:
    {{- toYaml .Values.gateway.autoscaling | nindent 4 }}
  podDisruptionBudget:
    {{- toYaml .Values.gateway.podDisruptionBudget | nindent 4 }}
  resources:
    {{- range $section := list "requests" "limits" }}
    {{- with index $.Values.gateway.resources $section }}
    {{ $section }}:
      {{- /* Quantities as strings: the operator reads them as strings, never numbers. */}}
      {{- range $resource, $quantity := . }}
      {{ $resource }}: {{ $quantity | toString | quote }}
      {{- end }}
    {{- end }}
    {{- end }}
  port: {{ .Values.gateway.port }}
  ledgerSecretRef:
    name: {{ include "sluicegate.ledgerSecretName" . | quote }}
    key: {{ include "sluicegate.ledgerSecretKey" . | quote }}
  serviceAccountName: {{ include "sluicegate.gateway.serviceAccountName" . | quote }}
ollama:
  image: {{ include "sluicegate.ollamaImage" . | quote }}
{{- end }}
