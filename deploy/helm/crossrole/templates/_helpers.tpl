{{- define "crossrole.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "crossrole.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "crossrole.labels" -}}
app.kubernetes.io/name: {{ include "crossrole.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "crossrole.selector" -}}
app.kubernetes.io/name: {{ include "crossrole.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "crossrole.secretName" -}}
{{- if .Values.existingSecret -}}{{ .Values.existingSecret }}{{- else -}}{{ include "crossrole.fullname" . }}-tokens{{- end -}}
{{- end -}}

{{- define "crossrole.journalKeySecretName" -}}
{{- if .Values.journalKey.existingSecret -}}{{ .Values.journalKey.existingSecret }}{{- else -}}{{ include "crossrole.fullname" . }}-journal-key{{- end -}}
{{- end -}}
