#!/usr/bin/env bash
# Needs the Debian 12 package: openssl.
#
# Throw-away TLS material for the test servers, made with the openssl CLI:
#   tls_certs.sh DIR
# writes into DIR (once; an existing DIR/ca.crt is kept):
#   ca.crt ca.key          a CA the tests trust
#   server.crt server.key  signed by it, for 127.0.0.1, ::1, localhost and redis.test
#   client.crt client.key  signed by it, a client certificate (mutual TLS)
#   other-ca.crt           a CA that signed nothing here: "untrusted" in tests
# Keys are RSA 2048, valid 2 days: nothing here outlives a test run.
set -Eeuo pipefail

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
d=$1
command -v openssl >/dev/null || { echo "tls_certs.sh: openssl is missing -- apt-get install -y openssl" >&2; exit 3; }
mkdir -p "$d"
[ ! -s "$d/ca.crt" ] || exit 0
cd "$d"
umask 077
ossl() { openssl "$@" 2>/dev/null || { echo "tls_certs.sh: openssl $1 failed in $d" >&2; exit 3; }; }

ossl req -x509 -new -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj "/CN=reign test CA"
ossl req -x509 -new -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.crt -days 2 -subj "/CN=reign other CA"

sign() { # sign NAME SUBJECT EXTENSIONS
  printf '%s\n' "$3" >"$1.ext"
  ossl req -new -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2"
  ossl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days 2 -extfile "$1.ext"
  rm -f "$1.csr" "$1.ext"
}
sign server "/CN=redis.test" "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost,DNS:redis.test
extendedKeyUsage=serverAuth"
sign client "/CN=reign test client" "extendedKeyUsage=clientAuth"
rm -f other-ca.key ca.srl
# the servers may run as another user (never root here); the files are throw-away
chmod 644 ./*.crt ./*.key
