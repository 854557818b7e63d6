#!/usr/bin/env bash
# scripts/generate-key.sh FILE [OWNER]: write a new caredata master secret:
# 64 random bytes from OpenSSL's CSPRNG, mode 0600, owned by OWNER (the OS
# user the PostgreSQL server runs as, e.g. postgres) when given.  Refuses to
# overwrite an existing file: losing the old secret loses every pseudonym.
set -euo pipefail
file=${1:?usage: generate-key.sh FILE [OWNER]}
owner=${2:-}
if [ -e "$file" ]; then
  echo "generate-key: $file exists; refusing to overwrite a master secret" >&2
  exit 1
fi
umask 077
openssl rand -out "$file" 64
chmod 0600 "$file"
[ -n "$owner" ] && chown "$owner" "$file"
echo "generate-key: wrote 64 random bytes to $file (mode 0600${owner:+, owner $owner})"
echo "generate-key: set caredata.key_file = '$file' in postgresql.conf, reload, and back the file up offline"
