{{/* Values the schema cannot judge alone: each refusal says why and what to set. Included by
deployment.yaml, so `helm template` and `helm install` stop before anything is applied. */}}
{{- define "vigil.validate" -}}
{{- $max := int (include "vigil.maxReplicas" .) }}
{{- if and (gt $max 1) (not (include "vigil.hasRedis" .)) }}
{{- fail (printf "%d replicas need Redis: set redis.url or redis.existingSecret. Without it each replica keeps its own in-process event log, so a client that reconnects to another replica cannot resume the events it missed, and runs cannot move when a replica is lost (docs/deploy.md). replicaCount=%v, autoscaling.enabled=%v, autoscaling.maxReplicas=%v" $max .Values.replicaCount .Values.autoscaling.enabled .Values.autoscaling.maxReplicas) }}
{{- end }}
{{- if and (gt $max 1) (not (include "vigil.hasDatabase" .)) }}
{{- fail (printf "%d replicas need PostgreSQL: set database.url or database.existingSecret. Without it each pod has its own SQLite file, so threads and events written on one replica are missing on the others (docs/deploy.md)" $max) }}
{{- end }}
{{- if and .Values.auth.jwtSecret (or .Values.auth.jwtPublicKey .Values.auth.existingSecretKeys.jwtPublicKey) }}
{{- fail "auth.jwtSecret and auth.jwtPublicKey are both set: the backend verifies with one key, HS256 (jwtSecret) or RS256/ES256 (jwtPublicKey); set only one" }}
{{- end }}
{{- if and .Values.auth.existingSecret (or .Values.auth.jwtSecret .Values.auth.jwtPublicKey .Values.auth.canaryToken) }}
{{- fail "auth.existingSecret is set together with auth.jwtSecret, auth.jwtPublicKey or auth.canaryToken: keep the keys in one place, either in values or in the existing Secret (auth.existingSecretKeys)" }}
{{- end }}
{{- if and (eq .Values.provider.name "openai") (eq .Values.mode "production") (not (or .Values.provider.openai.apiKey .Values.provider.openai.existingSecret)) }}
{{- fail "provider.name=openai in production mode needs provider.openai.apiKey or provider.openai.existingSecret (VIGIL_OPENAI_API_KEY): the backend refuses to start without it" }}
{{- end }}
{{- $minimum := add .Values.backend.preStopSleepSeconds .Values.backend.shutdownGraceSeconds }}
{{- $period := int (include "vigil.terminationGracePeriodSeconds" .) }}
{{- if lt $period (int $minimum) }}
{{- fail (printf "backend.terminationGracePeriodSeconds=%d is shorter than preStopSleepSeconds + shutdownGraceSeconds = %d: the kubelet would kill the backend while runs are still draining; raise it or leave it empty (computed)" $period (int $minimum)) }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail (printf "autoscaling.minReplicas=%v is above autoscaling.maxReplicas=%v" .Values.autoscaling.minReplicas .Values.autoscaling.maxReplicas) }}
{{- end }}
{{- end }}
