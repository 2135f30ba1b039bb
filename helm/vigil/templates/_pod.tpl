{{/* Pieces of the pod spec shared by the init container and the containers. */}}
{{- define "vigil.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
{{- end }}

{{- define "vigil.backendMounts" -}}
- name: tmp
  mountPath: /tmp
- name: data
  mountPath: {{ include "vigil.dataDir" . }}
{{- end }}

{{- define "vigil.canaryTokenEnv" -}}
{{- if and .Values.auth.existingSecret .Values.auth.existingSecretKeys.canaryToken }}
- name: VIGIL_CANARY_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.auth.existingSecret }}
      key: {{ .Values.auth.existingSecretKeys.canaryToken }}
{{- else if .Values.auth.canaryToken }}
- name: VIGIL_CANARY_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "vigil.secretName" . }}
      key: canary-token
{{- end }}
{{- end }}

{{/* The backend's environment (also the migrate init container's): secrets by reference;
plain settings come from the ConfigMap (envFrom). */}}
{{- define "vigil.backendEnv" -}}
{{ include "vigil.tokenEnv" . }}
- name: VIGIL_DATABASE_URL
{{- if .Values.database.existingSecret }}
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.existingSecret }}
      key: {{ .Values.database.existingSecretKey }}
{{- else if .Values.database.url }}
  valueFrom:
    secretKeyRef:
      name: {{ include "vigil.secretName" . }}
      key: database-url
{{- else }}
  value: {{ printf "sqlite+aiosqlite:///%s/vigil.db" (include "vigil.dataDir" .) | quote }}
{{- end }}
{{- if .Values.redis.existingSecret }}
- name: VIGIL_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.existingSecret }}
      key: {{ .Values.redis.existingSecretKey }}
{{- else if .Values.redis.url }}
- name: VIGIL_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "vigil.secretName" . }}
      key: redis-url
{{- end }}
{{- if .Values.provider.openai.existingSecret }}
- name: VIGIL_OPENAI_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.provider.openai.existingSecret }}
      key: {{ .Values.provider.openai.existingSecretKey }}
{{- else if .Values.provider.openai.apiKey }}
- name: VIGIL_OPENAI_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "vigil.secretName" . }}
      key: openai-api-key
{{- end }}
# Run leases are held under the pod's name, unique among the replicas.
- name: VIGIL_REPLICA_ID
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: K8S_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: K8S_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: K8S_NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ list "k8s.pod.name=$(K8S_POD_NAME),k8s.namespace.name=$(K8S_NAMESPACE),k8s.node.name=$(K8S_NODE_NAME)" .Values.otel.resourceAttributes | compact | join "," | quote }}
{{- end }}
