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
{{/* At most 52 characters: a StatefulSet's pods carry a label of its name and a 10-character
revision hash, which must fit in 63. */}}
{{- define "vortex.nats.fullname" -}}{{ include "vortex.fullname" . | trunc 47 | trimSuffix "-" }}-nats{{- end }}
{{- define "vortex.runtime.fullname" -}}{{ include "vortex.fullname" . }}-functions{{- end }}
{{- define "vortex.pool.fullname" -}}{{ include "vortex.fullname" . }}-pool{{- end }}

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

{{/* Selector labels of the pool's pods. They are function pods (name vortex-function), so the
runtime NetworkPolicy (ingress from the API only) and MinIO's (function pods may read code)
apply to them as well. */}}
{{- define "vortex.pool.selectorLabels" -}}
app.kubernetes.io/name: vortex-function
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: pool
{{- end }}

{{/* All labels of the pool's pods. */}}
{{- define "vortex.pool.podLabels" -}}
{{ include "vortex.pool.selectorLabels" . }}
app.kubernetes.io/part-of: vortex
vortex.dev/isolation: shared
{{- end }}

{{/* The pool's memory limit in MiB, when given as a plain number of bytes or with a binary or
decimal suffix (Ki, Mi, Gi, Ti, k, M, G, T); empty when not set. */}}
{{- define "vortex.pool.memoryLimitMb" -}}
{{- $limit := (.Values.pool.resources.limits | default dict).memory }}
{{- if not (kindIs "invalid" $limit) }}
{{- $text := toString $limit }}
{{- $factors := dict "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 "" 1 }}
{{- $suffix := regexFind "[A-Za-z]+$" $text }}
{{- $number := trimSuffix $suffix $text }}
{{- if and (hasKey $factors $suffix) (regexMatch "^[0-9]+$" $number) }}
{{- div (mul (int64 $number) (index $factors $suffix)) 1048576 }}
{{- end }}
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

{{/* The port MinIO listens on: the endpoint's, else 443 with TLS and 80 without. */}}
{{- define "vortex.minio.port" -}}
{{- $endpoint := include "vortex.minio.endpoint" . }}
{{- if regexMatch ":[0-9]+$" $endpoint }}
{{- regexFind "[0-9]+$" $endpoint }}
{{- else if eq (include "vortex.minio.secure" .) "true" }}443
{{- else }}80
{{- end }}
{{- end }}

{{/*
NetworkPolicyPeers (a YAML list) that reach MinIO, decided as the operator's
`manifests.minio_peers` decides them for warm pods: the bundled MinIO's pods; else
minio.external.networkPolicyPeers; else derived from the endpoint: an IPv4 address is that
address, `<service>.<namespace>` (or `.svc...`) the MinIO pods of that namespace, and any other
host anywhere (a NetworkPolicy cannot name a host, so only the port is pinned).
*/}}
{{- define "vortex.minio.peers" -}}
{{- if .Values.minio.enabled }}
- namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ .Release.Namespace }}
  podSelector:
    matchLabels:
      {{- include "vortex.selectorLabels" (dict "ctx" . "component" "minio") | nindent 6 }}
{{- else if .Values.minio.external.networkPolicyPeers }}
{{- toYaml .Values.minio.external.networkPolicyPeers }}
{{- else }}
{{- $host := regexReplaceAll ":[0-9]+$" (include "vortex.minio.endpoint" .) "" }}
{{- $parts := splitList "." $host }}
{{- if regexMatch "^[0-9]{1,3}(\\.[0-9]{1,3}){3}$" $host }}
- ipBlock:
    cidr: {{ $host }}/32
{{- else if and (ge (len $parts) 2) (or (eq (len $parts) 2) (eq (index $parts 2) "svc")) }}
- namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ index $parts 1 }}
  podSelector:
    matchLabels:
      app.kubernetes.io/name: minio
{{- else }}
- ipBlock:
    cidr: 0.0.0.0/0
{{- end }}
{{- end }}
{{- end }}

{{/* The NATS URL of the async queue: the bundled server's Service, else nats.external.url;
empty when there is neither (the API then has no queue and refuses async invocations). */}}
{{- define "vortex.nats.url" -}}
{{- if .Values.nats.enabled }}
{{- printf "nats://%s.%s.svc:4222" (include "vortex.nats.fullname" .) .Release.Namespace }}
{{- else }}
{{- .Values.nats.external.url }}
{{- end }}
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
