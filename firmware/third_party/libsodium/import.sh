#!/bin/sh
# Re-creates firmware/third_party/libsodium from Debian's source package (not run by the
# build). Needs a deb-src line for Debian 12 (bookworm, bookworm-security) and dpkg-dev.
#   firmware/third_party/libsodium/import.sh [VERSION]
set -eu
VERSION=${1:-1.0.18-1+deb12u1}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
apt-get source --download-only "libsodium=$VERSION"
dpkg-source -x ./*.dsc src >/dev/null
S=src/src/libsodium
rm -rf "$HERE/src"
for f in crypto_sign/ed25519/ref10/open.c crypto_sign/ed25519/ref10/sign.c \
         crypto_sign/ed25519/ref10/sign_ed25519_ref10.h \
         crypto_core/ed25519/ref10/ed25519_ref10.c crypto_core/ed25519/ref10/fe_25_5/base.h \
         crypto_core/ed25519/ref10/fe_25_5/base2.h crypto_core/ed25519/ref10/fe_25_5/constants.h \
         crypto_core/ed25519/ref10/fe_25_5/fe.h crypto_hash/sha256/cp/hash_sha256_cp.c \
         crypto_hash/sha512/cp/hash_sha512_cp.c crypto_verify/sodium/verify.c sodium/utils.c \
         include/sodium/core.h include/sodium/crypto_hash_sha256.h \
         include/sodium/crypto_hash_sha512.h include/sodium/crypto_sign_ed25519.h \
         include/sodium/crypto_verify_16.h include/sodium/crypto_verify_32.h \
         include/sodium/crypto_verify_64.h include/sodium/export.h include/sodium/randombytes.h \
         include/sodium/utils.h include/sodium/private/common.h \
         include/sodium/private/ed25519_ref10.h include/sodium/private/ed25519_ref10_fe_25_5.h; do
  mkdir -p "$HERE/src/libsodium/$(dirname "$f")"
  cp "$S/$f" "$HERE/src/libsodium/$f"
done
cp src/LICENSE "$HERE/LICENSE"
echo "imported libsodium $VERSION into $HERE"
