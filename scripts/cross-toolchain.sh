#!/usr/bin/env bash
# Installs the cross toolchain for the aarch64 build (and the armhf C compiler that builds the
# tests' AArch32 workload) into a private folder, WITHOUT touching the host's packages: Debian's
# gcc-aarch64-linux-gnu and gcc-arm-linux-gnueabihf conflict with gcc-multilib (which the ia32
# tests need), and libelf-dev:arm64 through multiarch would upgrade host packages. So the .debs
# are downloaded through a private apt configuration (own sources.list, lists, empty dpkg status;
# the host's apt state is neither read for resolution nor written, no dpkg --add-architecture)
# and unpacked with dpkg-deb -x. Also adds the Rust target with rustup.
#
# Usage: scripts/cross-toolchain.sh [--env] [DIR]
#   DIR     defaults to ${SHMGET_TRACE_CROSS:-$HOME/.cache/shmget-trace-cross}
#   --env   only print the environment (shell assignments) that scripts/build-aarch64 uses
# Idempotent: a complete folder is reused without network access.
set -euo pipefail

ENV_ONLY=0
if [[ ${1:-} == --env ]]; then ENV_ONLY=1; shift; fi
if [[ ${1:-} == -* ]]; then sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0" >&2; exit 2; fi
DIR=${1:-${SHMGET_TRACE_CROSS:-$HOME/.cache/shmget-trace-cross}}
SUITE=bookworm   # the release of the host userland and of the x86_64 build's libelf
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
ROOT=$DIR/root   # everything unpacked here

log() { printf 'cross-toolchain: %s\n' "$*" >&2; }
die() { printf 'cross-toolchain: error: %s\n' "$*" >&2; exit 1; }

print_env() {
    local lib=$ROOT/usr/lib/x86_64-linux-gnu
    cat <<EOF
export PATH="$ROOT/usr/bin:\$PATH"
export LD_LIBRARY_PATH="$lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER="$ROOT/usr/bin/aarch64-linux-gnu-gcc-12"
export CC_aarch64_unknown_linux_gnu="$ROOT/usr/bin/aarch64-linux-gnu-gcc-12"
export AR_aarch64_unknown_linux_gnu="$ROOT/usr/bin/aarch64-linux-gnu-ar"
export CFLAGS_aarch64_unknown_linux_gnu="-I$ROOT/usr/include"
export LIBBPF_SYS_LIBRARY_PATH_aarch64_unknown_linux_gnu="$ROOT/usr/lib/aarch64-linux-gnu"
export SHMGET_TRACE_ARMHF_CC="$ROOT/usr/bin/arm-linux-gnueabihf-gcc-12"
export SHMGET_TRACE_AARCH64_OBJCOPY="$ROOT/usr/bin/aarch64-linux-gnu-objcopy"
EOF
}

if [[ -f $DIR/.done ]]; then
    ((ENV_ONLY)) && { print_env; exit 0; }
    log "cached in $DIR"
elif ((ENV_ONLY)); then
    die "not installed in $DIR: run $0 first"
else
    exec 9>"$DIR/.lock"
    flock 9
    MIRROR=${SHMGET_TRACE_VM_MIRROR:-}
    if [[ -z $MIRROR ]]; then
        # The host's own Debian mirror: the first deb822 URIs, else the first one-line deb.
        MIRROR=$(awk 'tolower($1) == "uris:" { print $2; exit }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
        [[ -n $MIRROR ]] || MIRROR=$(sed -e 's/#.*//' -e 's/\[[^]]*\]//' /etc/apt/sources.list 2>/dev/null |
            awk '$1 == "deb" { print $2; exit }')
        [[ -n $MIRROR ]] || die "no Debian mirror found; set SHMGET_TRACE_VM_MIRROR"
    fi
    A=$DIR/apt
    mkdir -p "$A/etc/apt.conf.d" "$A/etc/preferences.d" "$A/state/lists/partial" "$A/cache/archives/partial" "$DIR/debs"
    : >>"$A/state/status"
    echo "deb [signed-by=$KEYRING arch=amd64,arm64,armhf] ${MIRROR%/} $SUITE main" >"$A/etc/sources.list"
    {
        echo "Dir::Etc::Main \"/dev/null\";"
        echo "Dir::Etc::Parts \"$A/etc/apt.conf.d\";"
        echo "Dir::Etc::SourceList \"$A/etc/sources.list\";"
        echo "Dir::Etc::SourceParts \"/dev/null\";"
        echo "Dir::Etc::Preferences \"/dev/null\";"
        echo "Dir::Etc::PreferencesParts \"$A/etc/preferences.d\";"
        echo "Dir::State \"$A/state\";"
        echo "Dir::State::Lists \"$A/state/lists\";"
        echo "Dir::State::status \"$A/state/status\";"
        echo "Dir::Cache \"$A/cache\";"
        echo "Dir::Cache::Archives \"$A/cache/archives\";"
        echo "APT::Architecture \"amd64\";"
        echo "APT::Architectures { \"amd64\"; \"arm64\"; \"armhf\"; };"
        echo "Acquire::Languages \"none\";"
        echo "APT::Sandbox::User \"$(id -un)\";"
        apt-config dump 2>/dev/null | grep -E \
            '^Acquire::(Check-Valid-Until|Check-Date|Retries|ForceIPv[46]|https?::|AllowInsecure|AllowWeak)' || true
    } >"$A/apt.conf"
    export APT_CONFIG=$A/apt.conf
    log "apt-get update (private, $SUITE, amd64 arm64 armhf)"
    apt-get -q update >"$A/update.log" 2>&1 || { cat "$A/update.log" >&2; die "private apt-get update failed"; }
    # The gcc drivers and binutils (amd64 executables), the targets' C libraries (the *-cross
    # packages, arch all), and libelf/zlib of the target for libbpf-sys's static link.
    PACKAGES=()
    for t in aarch64-linux-gnu:arm64 arm-linux-gnueabihf:armhf; do
        triple=${t%%:*} arch=${t##*:}
        PACKAGES+=("gcc-12-$triple" "cpp-12-$triple" "gcc-12-$triple-base" "binutils-$triple"
            "libgcc-12-dev-$arch-cross" "libgcc-s1-$arch-cross" "libc6-dev-$arch-cross"
            "libc6-$arch-cross" "linux-libc-dev-$arch-cross")
    done
    PACKAGES+=(libelf-dev:arm64 libelf1:arm64 zlib1g-dev:arm64 zlib1g:arm64)
    (cd "$DIR/debs" && apt-get -q download "${PACKAGES[@]}" >"$A/download.log" 2>&1) ||
        { cat "$A/download.log" >&2; die "apt-get download failed"; }
    rm -rf "$ROOT"; mkdir -p "$ROOT"
    for deb in "$DIR"/debs/*.deb; do dpkg-deb -x "$deb" "$ROOT"; done
    # Debian's cross packages put the target's files under /usr/<triple>; the arm64 libelf and
    # zlib under /usr/lib/aarch64-linux-gnu and /usr/include (their headers are the same).
    eval "$(print_env)"
    aarch64-linux-gnu-gcc-12 --version >/dev/null || die "the extracted aarch64 gcc does not run"
    arm-linux-gnueabihf-gcc-12 --version >/dev/null || die "the extracted armhf gcc does not run"
    rm -f "$A"/cache/*.bin
    touch "$DIR/.done"
    log "installed in $DIR ($(ls "$DIR/debs" | wc -l) packages, $(du -sh "$ROOT" | cut -f1))"
fi
rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu ||
    rustup target add aarch64-unknown-linux-gnu >&2
