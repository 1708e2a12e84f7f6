#!/usr/bin/env bash
# Lints docker/ where no container engine runs (CI has none, and no registry but
# Debian's): every runtime image installs the Debian packages its binary links
# (ldd of the built binary, each library's package in the dependency closure of the
# stage's packages), every COPY --from=build names a file the build makes, compose's
# targets are stages, and every TINYFLEET_* variable compose sets is a fleetd setting.
#   docker_check.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
dockerfile=$src/docker/Dockerfile compose=$src/docker/compose.yaml
fail=0
bad() { echo "docker_check: $*" >&2; fail=1; }

# The libraries a binary really loads: its direct dependencies that it uses (a build
# without --as-needed, e.g. the sanitizer one, lists unused ones: `ldd -u` names them)
# and everything those load in turn.
# (readelf and the unused list are read once a binary: per library they took most of this
# test's 90 s on the CI box.)
needed_libraries() {
  local bin=$1 unused lib direct u
  unused=$(for u in $(ldd -u -r "$bin" 2>/dev/null | awk '$1 ~ /^\// {print $1}' || true); do
             realpath "$u"
           done)
  direct=$(readelf -d "$bin" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p')
  for lib in $(ldd "$bin" | awk '$3 ~ /^\// {print $3}'); do
    grep -qxF "$(realpath "$lib")" <<<"$unused" && continue
    grep -qxF "$(basename "$lib")" <<<"$direct" || continue  # not direct
    echo "$lib"
    ldd "$lib" | awk '$3 ~ /^\// {print $3}'
  done | sort -u
}

stages=$(sed -n 's/^FROM .* AS \([a-z-]*\)$/\1/p' "$dockerfile")
for stage in fleetd optimizer fleet-sim; do
  grep -qx "$stage" <<<"$stages" || bad "no stage '$stage'"
  # The stage's lines: from its FROM to the next FROM.
  body=$(awk -v s="$stage" '/^FROM /{on = ($NF == s)} on' "$dockerfile")
  packages=$(echo "$body" | tr '\\' ' ' | sed -n '/apt-get install/,/rm -rf/p' |
             tr ' ' '\n' | grep -E '^[a-z0-9][a-z0-9.+-]+$' |
             grep -vE '^(apt-get|install|rm|update|y|q|no-install-recommends|rf)$' || true)
  [ -n "$packages" ] || bad "stage $stage installs no packages"
  closure=$(apt-cache depends --recurse --installed --no-recommends --no-suggests \
              --no-conflicts --no-breaks --no-replaces --no-enhances $packages 2>/dev/null |
            grep -vE '^ ' | sed 's/:amd64$//' | sort -u)
  for copied in $(echo "$body" | sed -n 's|^COPY --from=build /src/build/release/\([^ ]*\) .*|\1|p'); do
    bin=$build/$copied
    [ -x "$bin" ] || { bad "stage $stage copies $copied, which the build does not make"; continue; }
    libs=$(needed_libraries "$bin")
    # Each library's package, from one dpkg -S for all (by real path, or by the path ldd
    # names): "package[:arch]: path" lines.
    owners=$(dpkg -S $(for lib in $libs; do realpath "$lib"; echo "$lib"; done | sort -u) \
               2>/dev/null || true)
    for lib in $libs; do
      pkg=$(grep -m1 ": $(realpath "$lib")$" <<<"$owners" | cut -d: -f1) || true
      [ -n "$pkg" ] || pkg=$(grep -m1 ": $lib$" <<<"$owners" | cut -d: -f1) || true
      case "$pkg" in
        libc6 | libgcc-s1 | libstdc++6 | zlib1g | "") continue ;;  # in debian:12-slim
        libasan* | libubsan* | liblsan* | libtsan*) continue ;;    # sanitizer builds only
      esac
      grep -qx "$pkg" <<<"$closure" ||
        bad "stage $stage: $(basename "$bin") links $(basename "$lib") from $pkg, which its packages do not bring"
    done
  done
  echo "stage $stage: $(echo $packages | wc -w) packages, libraries covered"
done

for target in $(sed -n 's/.*target: \([a-z-]*\)}.*/\1/p' "$compose"); do
  grep -qx "$target" <<<"$stages" || bad "compose builds target '$target', which is no stage"
done
help=$("$build/server/fleetd" --help)
for var in $(grep -o 'TINYFLEET_[A-Z_]*' "$compose" | sort -u); do
  grep -q "; $var$" <<<"$help" || bad "compose sets $var, which is no fleetd setting"
done
exit $fail
