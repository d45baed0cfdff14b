# Certificates for the local cluster, made with openssl. Sourced by `up`.
# A real CA signs serving and client certificates; a separate RSA key signs
# service-account tokens.

PKI_LAYOUT=2   # bump to regenerate every certificate on the next `up`

_pki_sign() {  # _pki_sign NAME SUBJECT EXT
    local name="$1" subj="$2" ext="$3"
    openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/$name.key" 2>/dev/null
    openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr"
    openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
        -CAcreateserial -days 3650 -sha256 -extfile <(printf '%b' "$ext") \
        -out "$PKI/$name.crt" 2>/dev/null
    rm -f "$PKI/$name.csr"
}

ensure_pki() {
    if [ -f "$PKI/.layout" ] && [ "$(cat "$PKI/.layout")" = "$PKI_LAYOUT" ] && [ -f "$PKI/ca.crt" ]; then
        return 0
    fi
    log "generating certificates in $PKI"
    rm -rf "$PKI"; mkdir -p "$PKI"; chmod 700 "$PKI"
    openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/ca.key" 2>/dev/null
    openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=vortex-cluster-ca" -days 3650 -sha256 \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
        -out "$PKI/ca.crt"
    local client='basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n'
    local server='basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n'
    _pki_sign apiserver "/CN=kube-apiserver" \
        "${server}subjectAltName=IP:$NODE_IP,IP:$KUBERNETES_SVC_IP,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$CLUSTER_DOMAIN,DNS:$NODE_NAME\n"
    _pki_sign apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$client"
    _pki_sign admin "/O=system:masters/CN=vortex-admin" "$client"
    _pki_sign controller-manager "/CN=system:kube-controller-manager" "$client"
    _pki_sign scheduler "/CN=system:kube-scheduler" "$client"
    _pki_sign kube-proxy "/CN=system:kube-proxy" "$client"
    _pki_sign kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME" "$client"
    _pki_sign kubelet-server "/CN=$NODE_NAME" "${server}subjectAltName=IP:$NODE_IP,DNS:$NODE_NAME\n"
    openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
    openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
    chmod 600 "$PKI"/*.key
    echo "$PKI_LAYOUT" >"$PKI/.layout"
    # kubeconfigs embed paths to these files: rewrite them too
    rm -f "$ETC"/*.kubeconfig
}

write_kubeconfig() {  # write_kubeconfig FILE CERTNAME USER
    local f="$1" c="$2" u="$3"
    put_file "$f" <<KC
apiVersion: v1
kind: Config
clusters:
- name: vortex
  cluster:
    certificate-authority: $PKI/ca.crt
    server: https://$NODE_IP:$APISERVER_PORT
users:
- name: $u
  user:
    client-certificate: $PKI/$c.crt
    client-key: $PKI/$c.key
contexts:
- name: vortex
  context:
    cluster: vortex
    user: $u
current-context: vortex
KC
    chmod 600 "$f"
}

ensure_kubeconfigs() {
    mkdir -p "$ETC"
    write_kubeconfig "$KUBECONFIG_ADMIN" admin vortex-admin
    write_kubeconfig "$ETC/controller-manager.kubeconfig" controller-manager system:kube-controller-manager
    write_kubeconfig "$ETC/scheduler.kubeconfig" scheduler system:kube-scheduler
    write_kubeconfig "$ETC/kube-proxy.kubeconfig" kube-proxy system:kube-proxy
    write_kubeconfig "$ETC/kubelet.kubeconfig" kubelet-client "system:node:$NODE_NAME"
}
