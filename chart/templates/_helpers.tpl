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
A listen address from a value of vCP's shape: ADDR:PORT, rendered with tpl so that it may name
other values ("0.0.0.0:{{ .Values.dhcp.port }}"). An address without a port (this chart's
earlier shape, "0.0.0.0" or "$(SERVER_IP)") gets the separate port value; "" stays "" (off).
Called with (list $ value port).
*/}}
{{- define "metalboot.listen" -}}
{{- $root := index . 0 }}
{{- $addr := trim (tpl (toString (default "" (index . 1))) $root) }}
{{- if and $addr (not (regexMatch ":([0-9]+|\\$\\([A-Za-z_][A-Za-z0-9_]*\\))$" $addr)) }}
{{- $addr = printf "%s:%v" $addr (index . 2) }}
{{- end }}
{{- $addr }}
{{- end }}

{{/* The port of a listen address, or the port value when it is not a number: (list addr port). */}}
{{- define "metalboot.listenPort" -}}
{{- $port := last (splitList ":" (index . 0)) }}
{{- if regexMatch "^[0-9]+$" $port }}{{ $port }}{{ else }}{{ index . 1 }}{{ end }}
{{- end }}

{{/* The address part of a listen address. */}}
{{- define "metalboot.listenHost" -}}
{{- regexReplaceAll ":[^:]*$" . "" }}
{{- end }}

{{- define "metalboot.dhcpListen" -}}
{{- include "metalboot.listen" (list . .Values.dhcp.listenAddr .Values.dhcp.port) }}
{{- end }}

{{- define "metalboot.tftpListen" -}}
{{- include "metalboot.listen" (list . .Values.tftp.listenAddr .Values.tftp.port) }}
{{- end }}

{{- define "metalboot.httpListen" -}}
{{- include "metalboot.dualStack" (list . (include "metalboot.listen" (list . .Values.http.listenAddr .Values.http.port))) }}
{{- end }}

{{/* "true" when DHCPv6 is on (dhcp6.serverIP set). */}}
{{- define "metalboot.dhcp6" -}}
{{- $d := default (dict) .Values.dhcp6 }}
{{- if $d.serverIP }}true{{ end }}
{{- end }}

{{/* dhcp6.serverIP as a CIDR for static IPAM (prefix default /64), "" when off or not an IPv6 literal. */}}
{{- define "metalboot.dhcp6Cidr" -}}
{{- $ip := include "metalboot.tpl" (list . (default (dict) .Values.dhcp6).serverIP) }}
{{- if and $ip (contains ":" $ip) (not (contains "$(" $ip)) }}
{{- if contains "/" $ip }}{{ $ip }}{{ else }}{{ printf "%s/64" $ip }}{{ end }}
{{- end }}
{{- end }}

{{/* A listen address on 0.0.0.0 becomes [::] (both families) while DHCPv6 is on: (list $ addr). */}}
{{- define "metalboot.dualStack" -}}
{{- $addr := index . 1 }}
{{- if and (include "metalboot.dhcp6" (index . 0)) (hasPrefix "0.0.0.0:" $addr) }}
{{- printf "[::]:%s" (trimPrefix "0.0.0.0:" $addr) }}
{{- else }}{{ $addr }}{{ end }}
{{- end }}

{{- define "metalboot.httpPort" -}}
{{- include "metalboot.listenPort" (list (include "metalboot.httpListen" .) .Values.http.port) }}
{{- end }}

{{- define "metalboot.callbackListen" -}}
{{- include "metalboot.dualStack" (list . (include "metalboot.listen" (list . .Values.proxy.callbackListenAddr .Values.proxy.callbackPort))) }}
{{- end }}

{{/* A string value rendered with tpl ("" when unset): (list $ value). */}}
{{- define "metalboot.tpl" -}}
{{- trim (tpl (toString (default "" (index . 1))) (index . 0)) }}
{{- end }}

{{/*
dhcp.serverIP as given: "$(SERVER_IP)" (also for "", this chart's earlier default) with an
optional /prefix, or IP or IP/prefix.
*/}}
{{- define "metalboot.serverIP" -}}
{{- $v := trim (toString (default "" .Values.dhcp.serverIP)) }}
{{- if not $v }}{{ $v = "$(SERVER_IP)" }}{{ end }}
{{- if not (regexMatch "^(\\$\\(SERVER_IP\\)|[0-9]{1,3}(\\.[0-9]{1,3}){3})(/[0-9]{1,2})?$" $v) }}
{{- fail (printf "dhcp.serverIP %q is not $(SERVER_IP), IP or IP/prefix" $v) }}
{{- end }}
{{- $v }}
{{- end }}

{{/*
Whether something stands in front of the pods, so that clients do not reach them at their own
address: the provisioning Service, or the pod network without the NetworkAttachmentDefinition
(which works behind a DHCP relay alone).
*/}}
{{- define "metalboot.fronted" -}}
{{- if or (include "metalboot.provisioningService.enabled" .) (and (not .Values.hostNetwork) (not .Values.networkAttachmentDefinition.enabled)) }}true{{ end }}
{{- end }}

{{/*
The pod's configured provisioning address, IP or IP/prefix: dhcp.serverIP when it is an address
and nothing stands in front of the pod (clients reach the pod at that address, so it is the
pod's own), else the NetworkAttachmentDefinition's vip; "" when it comes from the downward API
(status.podIP).
*/}}
{{- define "metalboot.serverAddress" -}}
{{- $serverIP := include "metalboot.serverIP" . }}
{{- if and (not (hasPrefix "$(" $serverIP)) (not (include "metalboot.fronted" .)) }}
{{- $serverIP }}
{{- else if include "metalboot.nad.enabled" . }}
{{- $vip := required "networkAttachmentDefinition.vip is required when the NetworkAttachmentDefinition is enabled (the pod's provisioning address with its prefix, e.g. 192.168.100.3/24), unless dhcp.serverIP is set; or set hostNetwork=true or networkAttachmentDefinition.enabled=false" .Values.networkAttachmentDefinition.vip }}
{{- if not (regexMatch "^[0-9]{1,3}(\\.[0-9]{1,3}){3}/[0-9]{1,2}$" (toString $vip)) }}
{{- fail (printf "networkAttachmentDefinition.vip %q is not IP/prefix (e.g. 192.168.100.3/24)" (toString $vip)) }}
{{- end }}
{{- $vip }}
{{- end }}
{{- end }}

{{/*
The --server-ip argument: $(SERVER_IP), with a prefix when one is configured (on
dhcp.serverIP, else on the address SERVER_IP comes from).
*/}}
{{- define "metalboot.serverIPArg" -}}
{{- $serverIP := include "metalboot.serverIP" . }}
{{- $addr := include "metalboot.serverAddress" . }}
{{- if hasPrefix "$(SERVER_IP)/" $serverIP }}
{{- printf "$(SERVER_IP)/%s" (last (splitList "/" $serverIP)) }}
{{- else if contains "/" $addr }}
{{- printf "$(SERVER_IP)/%s" (last (splitList "/" $addr)) }}
{{- else }}
{{- print "$(SERVER_IP)" }}
{{- end }}
{{- end }}

{{/*
The address clients see in front of the pods ("" when they reach the pod itself): dhcp.serverIP
when it is an address and something stands in front, else the provisioning Service's address
when it is known in advance. It becomes --dhcp-advertise-ip and the host of the default
advertise URLs.
*/}}
{{- define "metalboot.frontAddress" -}}
{{- $serverIP := include "metalboot.serverIP" . }}
{{- if not (hasPrefix "$(" $serverIP) }}
{{- if include "metalboot.fronted" . }}{{ first (splitList "/" $serverIP) }}{{ end }}
{{- else }}
{{- include "metalboot.provisioningServiceAddress" . }}
{{- end }}
{{- end }}

{{/*
Whether the provisioning Service is created: when provisioningService.type is set (vCP), or as
this chart's earlier provisioningService.enabled says (true: a LoadBalancer unless type is set;
false: never).
*/}}
{{- define "metalboot.provisioningService.enabled" -}}
{{- $s := default (dict) .Values.provisioningService }}
{{- if and (hasKey $s "enabled") (not (kindIs "invalid" $s.enabled)) }}
{{- if $s.enabled }}true{{ end }}
{{- else if $s.type }}true{{ end }}
{{- end }}

{{/* The provisioning Service's annotations: metadata.annotations over the earlier top-level annotations. */}}
{{- define "metalboot.provisioningService.annotations" -}}
{{- $s := default (dict) .Values.provisioningService }}
{{- $metadata := default (dict) $s.metadata }}
{{- toYaml (merge (deepCopy (default (dict) $metadata.annotations)) (deepCopy (default (dict) $s.annotations))) }}
{{- end }}

{{/*
The address of the provisioning Service for booting hosts, "" when not known in advance:
loadBalancerIP, else the first externalIPs, else the first address of MetalLB's loadBalancerIPs
annotation.
*/}}
{{- define "metalboot.provisioningServiceAddress" -}}
{{- if include "metalboot.provisioningService.enabled" . }}
{{- $s := .Values.provisioningService }}
{{- $annotations := include "metalboot.provisioningService.annotations" . | fromYaml }}
{{- $metallb := trim (first (splitList "," (toString (coalesce (get $annotations "metallb.io/loadBalancerIPs") (get $annotations "metallb.universe.tf/loadBalancerIPs") "")))) }}
{{- if $s.loadBalancerIP }}{{ $s.loadBalancerIP }}
{{- else if $s.externalIPs }}{{ first $s.externalIPs }}
{{- else if regexMatch "^[0-9]{1,3}(\\.[0-9]{1,3}){3}$" $metallb }}{{ $metallb }}
{{- end }}
{{- end }}
{{- end }}

{{/* Where the ConfigMap of .Values.config is mounted. */}}
{{- define "metalboot.configDir" -}}
/etc/metalboot/config
{{- end }}

{{/* The container's arguments, one per line, from the values. */}}
{{- define "metalboot.args" -}}
{{- $v := .Values -}}
{{- $front := include "metalboot.frontAddress" . }}
{{- $service := include "metalboot.provisioningService.enabled" . }}
{{- if $v.config }}
- {{ printf "--config=%s/metalboot.yaml" (include "metalboot.configDir" .) | quote }}
{{- end }}
- {{ printf "--server-ip=%s" (include "metalboot.serverIPArg" .) | quote }}
- {{ printf "--dhcp-listen=%s" (include "metalboot.dhcpListen" .) | quote }}
{{- with $front }}
- {{ printf "--dhcp-advertise-ip=%s" . | quote }}
{{- end }}
{{- $tftp := include "metalboot.tftpListen" . }}
- {{ printf "--tftp-listen=%s" $tftp | quote }}
{{- if and $tftp (or $v.tftp.singlePort $service) }}
- "--tftp-single-port"
{{- end }}
{{- $http := include "metalboot.httpListen" . }}
{{- $httpPort := include "metalboot.httpPort" . }}
- {{ printf "--http-listen=%s" $http | quote }}
{{- $advertise := include "metalboot.tpl" (list . $v.http.advertiseUrl) }}
{{- if and (not $advertise) $front }}
{{- $advertise = printf "http://%s:%s" $front $httpPort }}
{{- end }}
{{- with $advertise }}
- {{ printf "--http-advertise-url=%s" . | quote }}
{{- end }}
{{- $ironicHttpUrl := include "metalboot.tpl" (list . $v.proxy.ironicHttpUrl) }}
{{- if $v.http.imagePort }}
- {{ printf "--image-listen=%s:%v" (include "metalboot.listenHost" $http) $v.http.imagePort | quote }}
{{- if $v.http.imageWorkers }}
- {{ printf "--image-workers=%v" $v.http.imageWorkers | quote }}
{{- end }}
{{- $imageAdvertise := include "metalboot.tpl" (list . $v.http.imageAdvertiseUrl) }}
{{- if and (not $imageAdvertise) $front $ironicHttpUrl }}
{{- $imageAdvertise = printf "http://%s:%v" $front $v.http.imagePort }}
{{- end }}
{{- with $imageAdvertise }}
- {{ printf "--image-advertise-url=%s" . | quote }}
{{- end }}
{{- end }}
- {{ printf "--callback-listen=%s" (include "metalboot.callbackListen" .) | quote }}
{{- with include "metalboot.tpl" (list . $v.proxy.callbackAdvertiseUrl) }}
- {{ printf "--callback-advertise-url=%s" . | quote }}
{{- end }}
{{- with include "metalboot.tpl" (list . $v.proxy.apiAdvertiseUrl) }}
- {{ printf "--api-advertise-url=%s" . | quote }}
{{- end }}
{{- with $ironicHttpUrl }}
- {{ printf "--ironic-http-url=%s" . | quote }}
{{- end }}
{{- with include "metalboot.tpl" (list . $v.proxy.ironicApiUrl) }}
- {{ printf "--ironic-api-url=%s" . | quote }}
{{- end }}
{{- with $v.secureBoot }}
{{- if .default }}
- "--secure-boot-default"
{{- end }}
{{- range $cpu, $flag := dict "x86_64" "x64" "arm64" "arm64" }}
{{- with index ($v.secureBoot.files | default dict) $cpu }}
{{- if hasKey . "shim" }}
- {{ printf "--secure-boot-shim-%s=%s" $flag .shim | quote }}
{{- end }}
{{- if hasKey . "secondStage" }}
- {{ printf "--secure-boot-second-stage-%s=%s" $flag .secondStage | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- if $v.kube.enabled }}
- "--kube"
{{- with $v.kube.namespace }}
- {{ printf "--kube-namespace=%s" . | quote }}
{{- end }}
{{- end }}
{{- if include "metalboot.dhcp6" . }}
{{- $d6 := $v.dhcp6 }}
- {{ printf "--dhcp6-server-ip=%s" (include "metalboot.tpl" (list . $d6.serverIP)) | quote }}
{{- with $d6.interface }}
- {{ printf "--dhcp6-interface=%s" . | quote }}
{{- end }}
{{- range $d6.ranges }}
- {{ printf "--dhcp6-range=%s" . | quote }}
{{- end }}
{{- with $d6.dns }}
- {{ printf "--dhcp6-dns=%s" (join "," .) | quote }}
{{- end }}
{{- with $d6.ntp }}
- {{ printf "--dhcp6-ntp=%s" (join "," .) | quote }}
{{- end }}
{{- range $d6.domainSearch }}
- {{ printf "--dhcp6-domain-search=%s" . | quote }}
{{- end }}
{{- end }}
{{- if not (include "metalboot.routerAdvertisements" .) }}
- "--router-advertisements=false"
{{- else }}
{{- with $v.routerAdvertisements.interface }}
- {{ printf "--router-advertisements-interface=%s" . | quote }}
{{- end }}
{{- end }}
{{- range $v.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}

{{/* "true" when metalboot sends router advertisements (radvd): routerAdvertisements.enabled. */}}
{{- define "metalboot.routerAdvertisements" -}}
{{- $ra := default (dict) .Values.routerAdvertisements }}
{{- if or (not (hasKey $ra "enabled")) $ra.enabled }}true{{ end }}
{{- end }}

{{/*
The container's securityContext: root under hostNetwork; NET_RAW added to the capabilities
while router advertisements are on (radvd's raw ICMPv6 socket).
*/}}
{{- define "metalboot.securityContext" -}}
{{- $sc := deepCopy (default (dict) .Values.securityContext) }}
{{- if .Values.hostNetwork }}
{{- $_ := set $sc "runAsUser" 0 }}
{{- $_ := set $sc "runAsGroup" 0 }}
{{- $_ := set $sc "runAsNonRoot" false }}
{{- end }}
{{- if include "metalboot.routerAdvertisements" . }}
{{- $caps := default (dict) $sc.capabilities }}
{{- $add := default (list) $caps.add }}
{{- if not (has "NET_RAW" $add) }}
{{- $_ := set $caps "add" (append $add "NET_RAW") }}
{{- end }}
{{- $_ := set $sc "capabilities" $caps }}
{{- end }}
{{- toYaml $sc }}
{{- end }}

{{/*
"true" when the user turned leader election on (vCP's HA recipe passes --leader-election-id in
extraArgs; METALBOOT_LEADER_ELECTION_ID in extraEnv does the same): the pod then needs its
service account token and a Role for Leases.
*/}}
{{- define "metalboot.leaderElection" -}}
{{- $on := false -}}
{{- range .Values.extraArgs -}}
{{- if or (eq (toString .) "--leader-election-id") (hasPrefix "--leader-election-id=" (toString .)) -}}
{{- $on = true -}}
{{- end -}}
{{- end -}}
{{- range .Values.extraEnv -}}
{{- if eq (toString .name) "METALBOOT_LEADER_ELECTION_ID" -}}
{{- $on = true -}}
{{- end -}}
{{- end -}}
{{- if $on }}true{{ end -}}
{{- end -}}

{{- /* The --leader-election-id value (extraArgs "--leader-election-id=X" or "--leader-election-id", "X",
or METALBOOT_LEADER_ELECTION_ID in extraEnv): names the Secret the Role may touch. */ -}}
{{- define "metalboot.leaderElectionId" -}}
{{- $id := "" -}}
{{- $next := false -}}
{{- range .Values.extraArgs -}}
{{- $a := toString . -}}
{{- if $next -}}{{- $id = $a -}}{{- $next = false -}}{{- end -}}
{{- if eq $a "--leader-election-id" -}}{{- $next = true -}}{{- end -}}
{{- if hasPrefix "--leader-election-id=" $a -}}{{- $id = trimPrefix "--leader-election-id=" $a -}}{{- end -}}
{{- end -}}
{{- range .Values.extraEnv -}}
{{- if and (eq (toString .name) "METALBOOT_LEADER_ELECTION_ID") .value -}}{{- $id = toString .value -}}{{- end -}}
{{- end -}}
{{- $id -}}
{{- end -}}
