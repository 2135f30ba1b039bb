{{/* Names and labels, the way `helm create` and kube-prometheus-stack spell them. */}}
{{- define "vigil.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "vigil.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "vigil.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "vigil.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vigil.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "vigil.labels" -}}
helm.sh/chart: {{ include "vigil.chart" . }}
{{ include "vigil.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: vigil
{{- end }}

{{- define "vigil.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "vigil.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "vigil.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The scrape jobs alerts/config.yaml selects on (selectors.backend and selectors.sidecar):
the rules and dashboards only see series with these job labels. */}}
{{- define "vigil.backendJob" -}}vigil{{- end }}
{{- define "vigil.sidecarJob" -}}vigil-sidecar{{- end }}

{{/* Paths inside the pod, on the volumes the processes write to. */}}
{{- define "vigil.dataDir" -}}/var/lib/vigil{{- end }}
{{- define "vigil.stateDir" -}}/var/lib/vigil-sidecar{{- end }}
{{- define "vigil.sloDir" -}}/etc/vigil/slo{{- end }}

{{- define "vigil.hasRedis" -}}
{{- if or .Values.redis.url .Values.redis.existingSecret }}true{{ end }}
{{- end }}

{{- define "vigil.hasDatabase" -}}
{{- if or .Values.database.url .Values.database.existingSecret }}true{{ end }}
{{- end }}

{{/* The most replicas this release can run: replicaCount, or the autoscaler's maximum. */}}
{{- define "vigil.maxReplicas" -}}
{{- if .Values.autoscaling.enabled }}{{ max .Values.replicaCount .Values.autoscaling.maxReplicas }}{{ else }}{{ .Values.replicaCount }}{{ end }}
{{- end }}

{{- define "vigil.terminationGracePeriodSeconds" -}}
{{- $minimum := add .Values.backend.preStopSleepSeconds .Values.backend.shutdownGraceSeconds }}
{{- if kindIs "invalid" .Values.backend.terminationGracePeriodSeconds }}
{{- add $minimum 10 }}
{{- else }}
{{- .Values.backend.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/* The chart's own Secret holds only what no existing Secret provides. */}}
{{- define "vigil.secretName" -}}{{ include "vigil.fullname" . }}{{- end }}

{{- define "vigil.jwtSecretRef" -}}
{{- if .Values.auth.existingSecret }}
name: {{ .Values.auth.existingSecret }}
key: {{ .Values.auth.existingSecretKeys.jwtSecret }}
{{- else }}
name: {{ include "vigil.secretName" . }}
key: jwt-secret
{{- end }}
{{- end }}

{{/* Settings both containers read: the mode and the token settings (the sidecar signs the
canary's tokens with the backend's key). */}}
{{- define "vigil.tokenEnv" -}}
- name: VIGIL_MODE
  value: {{ .Values.mode | quote }}
- name: VIGIL_JWT_ALGORITHMS
  value: {{ .Values.auth.algorithms | toJson | quote }}
{{- if .Values.auth.audience }}
- name: VIGIL_JWT_AUDIENCE
  value: {{ .Values.auth.audience | quote }}
{{- end }}
{{- if .Values.auth.issuer }}
- name: VIGIL_JWT_ISSUER
  value: {{ .Values.auth.issuer | quote }}
{{- end }}
{{- if and .Values.auth.existingSecret .Values.auth.existingSecretKeys.jwtPublicKey }}
- name: VIGIL_JWT_PUBLIC_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.auth.existingSecret }}
      key: {{ .Values.auth.existingSecretKeys.jwtPublicKey }}
{{- else if .Values.auth.jwtPublicKey }}
- name: VIGIL_JWT_PUBLIC_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "vigil.secretName" . }}
      key: jwt-public-key
{{- else }}
- name: VIGIL_JWT_SECRET
  valueFrom:
    secretKeyRef:
      {{- include "vigil.jwtSecretRef" . | trim | nindent 6 }}
{{- end }}
{{- end }}
