#!/bin/sh
# A small PKI for tlsecho, in the current directory (OpenSSL 3.0 or later):
#   server-ca.pem, server-ca.key   the CA that issues server certificates
#   client-ca.pem, client-ca.key   the CA that issues client certificates
#   server.pem, server.key         a server certificate for localhost and 127.0.0.1
#   client.pem, client.key         a client certificate for alice
set -eu

for who in server client; do
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
        -subj "/CN=Example $who CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash" \
        -addext "authorityKeyIdentifier=keyid:always" \
        -keyout "$who-ca.key" -out "$who-ca.pem"
done

openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 90 \
    -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -addext "basicConstraints=critical,CA:FALSE" \
    -addext "keyUsage=critical,digitalSignature" \
    -addext "extendedKeyUsage=serverAuth" \
    -addext "subjectKeyIdentifier=hash" \
    -addext "authorityKeyIdentifier=keyid:always" \
    -CA server-ca.pem -CAkey server-ca.key -keyout server.key -out server.pem

openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 90 \
    -subj "/CN=alice" \
    -addext "basicConstraints=critical,CA:FALSE" \
    -addext "keyUsage=critical,digitalSignature" \
    -addext "extendedKeyUsage=clientAuth" \
    -addext "subjectKeyIdentifier=hash" \
    -addext "authorityKeyIdentifier=keyid:always" \
    -CA client-ca.pem -CAkey client-ca.key -keyout client.key -out client.pem

chmod 600 ./*.key
openssl verify -x509_strict -CAfile server-ca.pem server.pem
openssl verify -x509_strict -CAfile client-ca.pem client.pem
