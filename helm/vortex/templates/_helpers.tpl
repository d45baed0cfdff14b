{{/*
Names, labels, images and secrets shared by every component's templates.
*/}}

{{- define "vortex.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release>-vortex, or <release> when it already contains the chart name; at most 48 characters
so that component suffixes (-operator, -minio) still fit in 63. */}}
{{- define "vortex.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 48 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "vortex.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "vortex.labels" -}}
helm.sh/chart: {{ include "vortex.chart" . }}
app.kubernetes.io/part-of: vortex
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- with .Values.global.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component: (dict "ctx" $ "component" "api"). */}}
{{- define "vortex.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vortex.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* All labels of one component's objects: (dict "ctx" $ "component" "api"). */}}
{{- define "vortex.componentLabels" -}}
{{ include "vortex.labels" .ctx }}
{{ include "vortex.selectorLabels" . }}
{{- end }}

{{- define "vortex.operator.fullname" -}}{{ include "vortex.fullname" . }}-operator{{- end }}
{{- define "vortex.api.fullname" -}}{{ include "vortex.fullname" . }}-api{{- end }}
{{- define "vortex.minio.fullname" -}}{{ include "vortex.fullname" . }}-minio{{- end }}
{{- define "vortex.runtime.fullname" -}}{{ include "vortex.fullname" . }}-functions{{- end }}

{{- define "vortex.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "vortex.operator.fullname" .) .Values.operator.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "vortex.api.serviceAccountName" -}}
{{- if .Values.api.serviceAccount.create }}
{{- default (include "vortex.api.fullname" .) .Values.api.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.api.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* An image reference from (dict "image" .Values.x.image "ctx" $): repo@digest or repo:tag. */}}
{{- define "vortex.image" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository (default .ctx.Chart.AppVersion .image.tag | toString) }}
{{- end }}
{{- end }}

{{- define "vortex.imagePullSecrets" -}}
{{- with .Values.global.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  {{- if kindIs "string" . }}
  - name: {{ . }}
  {{- else }}
  - {{ toYaml . | nindent 4 | trim }}
  {{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* Namespaces whose functions the operator reconciles (release namespace first); empty when
cluster-wide. */}}
{{- define "vortex.watchNamespaces" -}}
{{- if not .Values.operator.clusterWide }}
{{- $all := prepend .Values.operator.watchNamespaces .Release.Namespace | uniq }}
{{- join "," $all }}
{{- end }}
{{- end }}

{{/* The Secret with MINIO_ACCESS_KEY and MINIO_SECRET_KEY the operator uses. */}}
{{- define "vortex.minio.secretName" -}}
{{- if .Values.minio.enabled }}
{{- default (include "vortex.minio.fullname" .) .Values.minio.auth.existingSecret }}
{{- else }}
{{- required "minio.external.existingSecret is required when minio.enabled is false" .Values.minio.external.existingSecret }}
{{- end }}
{{- end }}

{{/* The Secret function pods read code with. */}}
{{- define "vortex.runtime.minioSecretName" -}}
{{- default (include "vortex.minio.secretName" .) .Values.runtime.minioCredentialsSecret }}
{{- end }}

{{/* host:port of MinIO as function pods and the operator reach it. */}}
{{- define "vortex.minio.endpoint" -}}
{{- if .Values.minio.enabled }}
{{- printf "%s.%s.svc:9000" (include "vortex.minio.fullname" .) .Release.Namespace }}
{{- else }}
{{- required "minio.external.endpoint is required when minio.enabled is false" .Values.minio.external.endpoint }}
{{- end }}
{{- end }}

{{- define "vortex.minio.secure" -}}
{{- if and (not .Values.minio.enabled) .Values.minio.external.secure }}true{{ else }}false{{ end }}
{{- end }}

{{/* The Secret with the API keys. */}}
{{- define "vortex.api.authSecretName" -}}
{{- default (printf "%s-auth" (include "vortex.api.fullname" .)) .Values.api.auth.existingSecret }}
{{- end }}

{{/*
A value kept across upgrades: the given value if set, else the one already stored in the Secret
(lookup), else a fresh random one. (dict "ctx" $ "secret" NAME "key" KEY "value" VALUE "length" N)
`helm template` cannot look up, so it renders a fresh value there.
*/}}
{{- define "vortex.stableSecretValue" -}}
{{- if .value }}
{{- .value | b64enc }}
{{- else }}
{{- $existing := lookup "v1" "Secret" .ctx.Release.Namespace .secret }}
{{- if and $existing (index ($existing.data | default dict) .key) }}
{{- index $existing.data .key }}
{{- else }}
{{- randAlphaNum (int .length) | b64enc }}
{{- end }}
{{- end }}
{{- end }}
