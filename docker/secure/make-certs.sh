#!/usr/bin/env bash
# Makes a throwaway CA and a broker certificate for docker-compose.secure.yml, in
# docker/secure/certs/ (not committed): ca.crt for clients, broker.pem (key, then chain)
# for the broker. The broker's names: localhost and 127.0.0.1 for host clients, sluice for
# containers on the compose network. Re-running replaces them. An argument names another
# directory.
set -euo pipefail
dir=${1:-$(cd "$(dirname "$0")" && pwd)/certs}
mkdir -p "$dir"
cd "$dir"
openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=Sluice local CA" \
    -keyout ca.key -out ca.crt 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=sluice" -keyout broker.key -out broker.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost,DNS:sluice,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >broker.ext
openssl x509 -req -in broker.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 \
    -extfile broker.ext -out broker.crt 2>/dev/null
cat broker.key broker.crt ca.crt >broker.pem
# The broker runs as uid 10001 in the container and reads this through a bind mount.
chmod 644 broker.pem ca.crt
rm -f broker.csr broker.ext ca.srl broker.key broker.crt
echo "certificates in $dir (clients trust ca.crt)"
