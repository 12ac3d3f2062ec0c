#!/bin/sh
# usage: mkcert.sh DIR IP  -> DIR/ca.pem (private CA), DIR/op.pem + DIR/op.key (server cert, SAN IP:IP)
set -eu
DIR=$1; IP=$2
mkdir -p "$DIR"; cd "$DIR"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=pgw-e2e-ca -keyout ca.key -out ca.pem \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -subj /CN=op -keyout op.key -out op.csr 2>/dev/null
printf 'subjectAltName=IP:%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' "$IP" > op.ext
openssl x509 -req -in op.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -sha256 \
  -extfile op.ext -out op.pem 2>/dev/null
rm -f op.csr op.ext ca.srl
openssl verify -CAfile ca.pem op.pem >/dev/null
