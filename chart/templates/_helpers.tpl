{{/* Names and labels. */}}
{{- define "metalboot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "metalboot.fullname" -}}
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

{{- define "metalboot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "metalboot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "metalboot.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "metalboot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "metalboot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "metalboot.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "metalboot.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.registry }}
{{- printf "%s/%s:%s" (trimSuffix "/" .Values.image.registry) .Values.image.repository $tag }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* Whether the NetworkAttachmentDefinition is created and attached. */}}
{{- define "metalboot.nad.enabled" -}}
{{- if and .Values.networkAttachmentDefinition.enabled (not .Values.hostNetwork) }}true{{ end }}
{{- end }}

{{- define "metalboot.nad.name" -}}
{{- default (printf "%s-provisioning" (include "metalboot.fullname" .)) .Values.networkAttachmentDefinition.name }}
{{- end }}

{{/*
The configured provisioning address, IP or IP/prefix: dhcp.serverIP, else the
NetworkAttachmentDefinition's vip; "" when it comes from the downward API (status.podIP).
*/}}
{{- define "metalboot.serverAddress" -}}
{{- $pattern := "^[0-9]{1,3}(\\.[0-9]{1,3}){3}(/[0-9]{1,2})?$" }}
{{- if .Values.dhcp.serverIP }}
{{- if not (regexMatch $pattern (toString .Values.dhcp.serverIP)) }}
{{- fail (printf "dhcp.serverIP %q is not IP or IP/prefix" (toString .Values.dhcp.serverIP)) }}
{{- end }}
{{- .Values.dhcp.serverIP }}
{{- else if include "metalboot.nad.enabled" . }}
{{- $vip := required "networkAttachmentDefinition.vip is required when the NetworkAttachmentDefinition is enabled (the pod's provisioning address with its prefix, e.g. 192.168.100.2/24), unless dhcp.serverIP is set; or set hostNetwork=true or networkAttachmentDefinition.enabled=false" .Values.networkAttachmentDefinition.vip }}
{{- if not (regexMatch "^[0-9]{1,3}(\\.[0-9]{1,3}){3}/[0-9]{1,2}$" (toString $vip)) }}
{{- fail (printf "networkAttachmentDefinition.vip %q is not IP/prefix (e.g. 192.168.100.2/24)" (toString $vip)) }}
{{- end }}
{{- $vip }}
{{- end }}
{{- end }}

{{/* The --server-ip argument: $(SERVER_IP), with the configured prefix when there is one. */}}
{{- define "metalboot.serverIPArg" -}}
{{- $addr := include "metalboot.serverAddress" . }}
{{- if contains "/" $addr }}
{{- printf "$(SERVER_IP)/%s" (last (splitList "/" $addr)) }}
{{- else }}
{{- print "$(SERVER_IP)" }}
{{- end }}
{{- end }}

{{/* The address of provisioningService for booting hosts, "" when not known in advance. */}}
{{- define "metalboot.provisioningServiceAddress" -}}
{{- $s := .Values.provisioningService }}
{{- if $s.enabled }}
{{- if $s.loadBalancerIP }}{{ $s.loadBalancerIP }}{{ else if $s.externalIPs }}{{ first $s.externalIPs }}{{ end }}
{{- end }}
{{- end }}

{{/* Where the ConfigMap of .Values.config is mounted. */}}
{{- define "metalboot.configDir" -}}
/etc/metalboot/config
{{- end }}

{{/* The container's arguments, one per line, from the values. */}}
{{- define "metalboot.args" -}}
{{- $v := .Values -}}
{{- if $v.config }}
- {{ printf "--config=%s/metalboot.yaml" (include "metalboot.configDir" .) | quote }}
{{- end }}
- {{ printf "--server-ip=%s" (include "metalboot.serverIPArg" .) | quote }}
- {{ printf "--dhcp-listen=%s:%v" $v.dhcp.listenAddr $v.dhcp.port | quote }}
{{- with include "metalboot.provisioningServiceAddress" . }}
- {{ printf "--dhcp-advertise-ip=%s" . | quote }}
{{- end }}
{{- if $v.tftp.listenAddr }}
- {{ printf "--tftp-listen=%s:%v" $v.tftp.listenAddr $v.tftp.port | quote }}
{{- else }}
- "--tftp-listen="
{{- end }}
{{- if and $v.tftp.listenAddr (or $v.tftp.singlePort $v.provisioningService.enabled) }}
- "--tftp-single-port"
{{- end }}
- {{ printf "--http-listen=%s:%v" $v.http.listenAddr $v.http.port | quote }}
{{- $advertise := $v.http.advertiseUrl }}
{{- $serviceAddress := include "metalboot.provisioningServiceAddress" . }}
{{- if and (not $advertise) $serviceAddress }}
{{- $advertise = printf "http://%s:%v" $serviceAddress $v.http.port }}
{{- end }}
{{- if $advertise }}
- {{ printf "--http-advertise-url=%s" $advertise | quote }}
{{- end }}
{{- if $v.http.imagePort }}
- {{ printf "--image-listen=%s:%v" $v.http.listenAddr $v.http.imagePort | quote }}
{{- $imageAdvertise := $v.http.imageAdvertiseUrl }}
{{- if and (not $imageAdvertise) $serviceAddress $v.proxy.ironicHttpUrl }}
{{- $imageAdvertise = printf "http://%s:%v" $serviceAddress $v.http.imagePort }}
{{- end }}
{{- if $imageAdvertise }}
- {{ printf "--image-advertise-url=%s" $imageAdvertise | quote }}
{{- end }}
{{- end }}
{{- if $v.proxy.callbackListenAddr }}
- {{ printf "--callback-listen=%s:%v" $v.proxy.callbackListenAddr $v.proxy.callbackPort | quote }}
{{- else }}
- "--callback-listen="
{{- end }}
{{- with $v.proxy.callbackAdvertiseUrl }}
- {{ printf "--callback-advertise-url=%s" . | quote }}
{{- end }}
{{- with $v.proxy.apiAdvertiseUrl }}
- {{ printf "--api-advertise-url=%s" . | quote }}
{{- end }}
{{- with $v.proxy.ironicHttpUrl }}
- {{ printf "--ironic-http-url=%s" . | quote }}
{{- end }}
{{- with $v.proxy.ironicApiUrl }}
- {{ printf "--ironic-api-url=%s" . | quote }}
{{- end }}
{{- if $v.kube.enabled }}
- "--kube"
{{- with $v.kube.namespace }}
- {{ printf "--kube-namespace=%s" . | quote }}
{{- end }}
{{- end }}
{{- range $v.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}

{{/* The container's securityContext: root under hostNetwork. */}}
{{- define "metalboot.securityContext" -}}
{{- $sc := deepCopy (default (dict) .Values.securityContext) }}
{{- if .Values.hostNetwork }}
{{- $_ := set $sc "runAsUser" 0 }}
{{- $_ := set $sc "runAsGroup" 0 }}
{{- $_ := set $sc "runAsNonRoot" false }}
{{- end }}
{{- toYaml $sc }}
{{- end }}
