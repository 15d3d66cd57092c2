{{/* Names and labels shared by every object of the release. */}}
{{- define "mcpgate.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "mcpgate.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "mcpgate.labels" -}}
{{ include "mcpgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Where the pod sees its files; the configuration's *_file keys and tls paths point here. */}}
{{- define "mcpgate.configDir" -}}/etc/mcpgate/config{{- end -}}
{{- define "mcpgate.tlsDir" -}}/etc/mcpgate/tls{{- end -}}
{{- define "mcpgate.secretsDir" -}}/etc/mcpgate/secrets{{- end -}}

{{/*
The mcpgate configuration file: .Values.config, plus
- admin.bind on .Values.ports.admin, so the probes and the admin Service always reach it;
- shutdown.grace_period from .Values.drain, so the pod's termination grace period covers it;
- sessions, rate_limits and login only when their values are set (default: absent, mcpgate's defaults).
Fails the render when a listener does not bind .Values.ports.mcp or when config sets what the chart owns.
*/}}
{{- define "mcpgate.config" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- if hasKey $cfg "shutdown" -}}
{{- fail "config.shutdown is set by the chart: use drain.gracePeriodSeconds" -}}
{{- end -}}
{{- if hasKey $cfg "admin" -}}
{{- fail "config.admin is set by the chart: use ports.admin" -}}
{{- end -}}
{{- $mcpPort := printf ":%d" (int .Values.ports.mcp) -}}
{{- $bound := false -}}
{{- range ($cfg.listeners | default list) -}}
{{- if hasSuffix $mcpPort (toString .bind) -}}{{- $bound = true -}}{{- end -}}
{{- end -}}
{{- if not $bound -}}
{{- fail (printf "no entry of config.listeners binds port %d (ports.mcp): the Service would reach nothing" (int .Values.ports.mcp)) -}}
{{- end -}}
{{- $_ := set $cfg "admin" (dict "bind" (printf "0.0.0.0:%d" (int .Values.ports.admin))) -}}
{{- $_ := set $cfg "shutdown" (dict "grace_period" (printf "%ds" (int .Values.drain.gracePeriodSeconds))) -}}
{{- if .Values.sessions -}}{{- $_ := set $cfg "sessions" .Values.sessions -}}{{- end -}}
{{- if .Values.rateLimits -}}{{- $_ := set $cfg "rate_limits" .Values.rateLimits -}}{{- end -}}
{{- if .Values.login -}}{{- $_ := set $cfg "login" .Values.login -}}{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* The pod's termination grace period: the preStop delay, mcpgate's drain, and a margin. */}}
{{- define "mcpgate.terminationGracePeriodSeconds" -}}
{{- add (int .Values.drain.preStopSeconds) (int .Values.drain.gracePeriodSeconds) (int .Values.drain.marginSeconds) -}}
{{- end -}}

{{/* The restricted Pod Security Standard, for any container of the pod. */}}
{{- define "mcpgate.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}
