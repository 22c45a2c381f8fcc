#!/usr/bin/env bash
# A self-signed certificate for 127.0.0.1 and localhost, for the wss://
# checks and benchmarks: DIR/cert.pem and DIR/key.pem (P-256). It is an
# end entity (CA:FALSE): rustls refuses a CA certificate as a server's;
# Python, Node and Chromium take it as it is.
#
#   tools/tls_cert.sh DIR
set -euo pipefail
dir=${1:?usage: tls_cert.sh DIR}
mkdir -p "$dir"
command -v openssl >/dev/null 2>&1 || apt-get install -y -qq openssl >/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
  -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" -addext "basicConstraints=critical,CA:FALSE" \
  -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
