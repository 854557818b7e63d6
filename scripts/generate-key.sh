#!/usr/bin/env bash
# scripts/generate-key.sh FILE [OWNER]: write a new caredata master secret:
# 64 random bytes from OpenSSL's CSPRNG, mode 0600, owned by OWNER (the OS
# user the PostgreSQL server runs as, e.g. postgres) when given.  Refuses to
# overwrite an existing file: losing the old secret loses every pseudonym.
# A missing directory (/etc/postgresql/caredata/ after a source or PGXN
# install; the Debian package makes it) is made root's, OWNER's group, 0750.
# Installed as $(pg_config --bindir)/caredata-generate-key.
set -euo pipefail
file=${1:?usage: generate-key.sh FILE [OWNER]}
owner=${2:-}
if [ -e "$file" ]; then
  echo "generate-key: $file exists; refusing to overwrite a master secret" >&2
  exit 1
fi
dir=$(dirname "$file")
if [ ! -d "$dir" ]; then
  mkdir -p -m 0750 "$dir"
  [ -n "$owner" ] && chgrp "$(id -gn "$owner")" "$dir"
  echo "generate-key: made $dir (mode 0750${owner:+, group $(id -gn "$owner")})"
fi
umask 077
openssl rand -out "$file" 64
chmod 0600 "$file"
[ -n "$owner" ] && chown "$owner" "$file"
echo "generate-key: wrote 64 random bytes to $file (mode 0600${owner:+, owner $owner})"
echo "generate-key: set caredata.key_file = '$file' in postgresql.conf, reload, and back the file up offline"
