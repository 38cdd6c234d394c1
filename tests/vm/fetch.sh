#!/usr/bin/env bash
# Fetch what tests/vm/run-in-vm.sh needs into a cache folder, without touching the host's packages:
#   - Debian kernels (bullseye 5.10, bookworm 6.1, trixie 6.12) -> CACHE/kernels/<suite>/
#   - trixie's GENERIC amd64 kernel (linux-image-amd64, not -cloud-amd64: CONFIG_X86_X32_ABI=y,
#     off unless booted with syscall.x32=y) -> CACHE/kernels/trixie-x32/ (about 108 MB .deb)
#   - Debian's qemu-system-x86 (+ BIOS files and the shared libs the host lacks) -> CACHE/qemu/
#   - busybox-static -> CACHE/busybox/
# With --arch arm64, the same for the arm64 guests under CACHE/arm64/: Debian's arm64 kernels,
# qemu-system-aarch64 (from qemu-system-arm, an amd64 package) and arm64 busybox-static; and
# bookworm's strace:arm64 with the arm64 libraries it depends on (libc6, ...), unpacked into
# CACHE/arm64/strace/ (a tree with usr/bin/strace, lib/aarch64-linux-gnu/...; matrix.sh bundles
# it into the guests). The amd64 guests get the host's own /usr/bin/strace instead.
# Usage: tests/vm/fetch.sh [--refresh] [--arch amd64|arm64] [CACHE_DIR]
#   CACHE_DIR defaults to ${SHMGET_TRACE_VM_CACHE:-$HOME/.cache/shmget-trace-vm} (outside the repo).
#   --refresh re-runs the private `apt-get update` and re-resolves everything.
# Idempotent: what is already in the cache is not downloaded again.
# Everything goes through a PRIVATE apt configuration under CACHE/apt/<suite>/ (own sources.list,
# lists, cache, empty dpkg status), so the host's apt state is never read for resolution nor
# written. Installing qemu-system-x86 on the host would remove its newer qemu-utils backport,
# hence download + `dpkg-deb -x` only.
set -euo pipefail

REFRESH=0
ARCH=amd64
while [[ ${1:-} == --* ]]; do
    case $1 in
        --refresh) REFRESH=1; shift ;;
        --arch) ARCH=${2:?}; shift 2 ;;
        *) break ;;
    esac
done
[[ $ARCH == amd64 || $ARCH == arm64 ]] || { echo "fetch.sh: --arch amd64 or arm64" >&2; exit 2; }
if [[ ${1:-} == -* ]]; then sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0" >&2; exit 2; fi
CACHE=${1:-${SHMGET_TRACE_VM_CACHE:-$HOME/.cache/shmget-trace-vm}}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)   # absolute: apt and dpkg-deb run from other directories
# Where this architecture's guests' kernels, qemu and busybox go (amd64: the cache itself).
BASE=$CACHE
[[ $ARCH == amd64 ]] || BASE=$CACHE/$ARCH
# One fetch at a time per cache (parallel test runs may all find it incomplete).
exec 9>"$CACHE/.fetch.lock"
flock 9

# Kernel names: a suite (its cloud kernel, else its generic one), or SUITE-x32 (amd64 only: the
# suite's generic kernel, which has the x32 ABI built in; run-in-vm.sh's caller boots it with
# syscall.x32=y).
KERNELS=(bullseye bookworm trixie)
[[ $ARCH == amd64 ]] && KERNELS+=(trixie-x32)
TOOLS_SUITE=bookworm          # qemu + busybox: same release as the host userland (Debian 12)
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

log() { printf 'fetch.sh: %s\n' "$*" >&2; }
die() { printf 'fetch.sh: error: %s\n' "$*" >&2; exit 1; }

# --- Mirror: the one the host's own apt uses for its Debian release (no host name hard-coded). ---
detect_mirror() {
    if [[ -n ${SHMGET_TRACE_VM_MIRROR:-} ]]; then echo "$SHMGET_TRACE_VM_MIRROR"; return; fi
    local codename='' uri f
    codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}") || true
    local want=" ${codename} bullseye bookworm trixie stable oldstable "
    # deb822 files: the first stanza of Types deb whose Suites has one of the release names.
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] || continue
        uri=$(awk -v want="$want" '
            function flush() { if (deb && ok && uri != "" && !done) { print uri; done = 1 } deb = ok = 0; uri = "" }
            /^[[:space:]]*$/ { flush(); next }
            /^[[:space:]]*#/ { next }
            tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
            tolower($1) == "uris:" { uri = $2 }
            tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if (index(want, " " $i " ")) ok = 1 }
            END { flush() }' "$f")
        if [[ -n $uri ]]; then echo "${uri%/}"; return; fi
    done
    # One-line format: "deb [opts] URI SUITE COMPONENTS..."
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f $f ]] || continue
        uri=$(sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" | awk -v want="$want" '
            $1 == "deb" && index(want, " " $3 " ") { print $2; exit }')
        if [[ -n $uri ]]; then echo "${uri%/}"; return; fi
    done
    die "no Debian mirror found in /etc/apt/sources.list(.d); set SHMGET_TRACE_VM_MIRROR"
}
MIRROR=$(detect_mirror)
log "mirror: $MIRROR (from the host's apt sources)"

# --- Private apt configuration, one per suite (so "pkg" always means that suite's version). ---
# A suite key is the suite's name (amd64) or SUITE-arm64 (the arm64 packages of SUITE).
apt_dir() { echo "$CACHE/apt/$1"; }
setup_apt() {
    local suite=${1%-arm64} arch=amd64 d
    [[ $1 == *-arm64 ]] && arch=arm64
    d=$(apt_dir "$1")
    mkdir -p "$d/etc/apt.conf.d" "$d/etc/preferences.d" "$d/state/lists/partial" \
        "$d/cache/archives/partial"
    : >>"$d/state/status"    # empty dpkg status: resolve as on an empty system
    echo "deb [signed-by=$KEYRING] $MIRROR $suite main" >"$d/etc/sources.list"
    {
        echo "Dir::Etc::Main \"/dev/null\";"
        echo "Dir::Etc::Parts \"$d/etc/apt.conf.d\";"
        echo "Dir::Etc::SourceList \"$d/etc/sources.list\";"
        echo "Dir::Etc::SourceParts \"/dev/null\";"
        echo "Dir::Etc::Preferences \"/dev/null\";"
        echo "Dir::Etc::PreferencesParts \"$d/etc/preferences.d\";"
        echo "Dir::State \"$d/state\";"
        echo "Dir::State::Lists \"$d/state/lists\";"
        echo "Dir::State::status \"$d/state/status\";"
        echo "Dir::Cache \"$d/cache\";"
        echo "Dir::Cache::Archives \"$d/cache/archives\";"
        echo "APT::Architecture \"$arch\";"
        echo "APT::Architectures { \"$arch\"; };"
        echo "Acquire::Languages \"none\";"
        # Our folders may not be reachable by the _apt sandbox user (e.g. under /root).
        echo "APT::Sandbox::User \"$(id -un)\";"
        # Keep the host's transport settings (proxy, Check-Valid-Until for a snapshot mirror, ...),
        # but none of its hooks (appstream/packagekit Post-Invoke) or extra index targets.
        apt-config dump 2>/dev/null | grep -E \
            '^Acquire::(Check-Valid-Until|Check-Date|GzipIndexes|Max-ValidTime|Retries|ForceIPv[46]|https?::|ftp::|AllowInsecure|AllowWeak|AllowDowngrade)' || true
    } >"$d/apt.conf"
}
apt_in() { local suite=$1; shift; APT_CONFIG="$(apt_dir "$suite")/apt.conf" "$@"; }

declare -A UPDATED=()
update_suite() {
    local suite=$1 d
    [[ -n ${UPDATED[$suite]:-} ]] && return 0
    setup_apt "$suite"
    d=$(apt_dir "$suite")
    # Lists are reused unless --refresh: an idempotent re-run must not need the network.
    if [[ $REFRESH == 1 || ! -e $d/state/updated.stamp ]]; then
        log "apt-get update (private, $suite)"
        apt_in "$suite" apt-get -q update >"$d/update.log" 2>&1 ||
            { cat "$d/update.log" >&2; die "private apt-get update failed for $suite"; }
        touch "$d/state/updated.stamp"
    fi
    UPDATED[$suite]=1
}

# Field of the candidate version of a package in a suite (empty if unknown).
pkg_field() {
    apt_in "$1" apt-cache show --no-all-versions "$2" 2>/dev/null |
        awk -v f="$3:" 'tolower($1) == tolower(f) { sub(/^[^:]*:[ \t]*/, ""); print; exit }'
}
# Depends + Pre-Depends as one alternative group per line ("a | b | c"), versions stripped.
pkg_deps() {
    { pkg_field "$1" "$2" Pre-Depends; pkg_field "$1" "$2" Depends; } | tr ',' '\n' |
        sed -e 's/([^)]*)//g' -e 's/:any//g' -e 's/[[:space:]]\+/ /g' -e 's/^ //' -e 's/ $//' |
        grep -v '^$' || true
}

# Download a package of a suite into CACHE/debs/<suite>/ (kept: re-runs reuse it).
download() {
    local suite=$1 pkg=$2 ver dir f
    ver=$(pkg_field "$suite" "$pkg" Version)
    [[ -n $ver ]] || die "package $pkg not found in $suite"
    dir=$CACHE/debs/$suite
    mkdir -p "$dir"
    f=$(ls "$dir/${pkg}_"*"_"*.deb 2>/dev/null | while read -r x; do
        [[ $(dpkg-deb -f "$x" Version) == "$ver" ]] && echo "$x"; done | head -n1 || true)
    if [[ -z $f ]]; then
        log "download $pkg $ver ($suite)"
        (cd "$dir" && apt_in "$suite" apt-get -q download "$pkg=$ver" >/dev/null 2>"$dir/.err") ||
            { cat "$dir/.err" >&2; die "apt-get download $pkg failed"; }
        f=$(ls -t "$dir/${pkg}_"*.deb | head -n1)
    fi
    echo "$f"
}

# --- Kernels ---
check_config() { # config file [extra options] -> prints the missing options
    local cfg=$1 opt arch_opts="CONFIG_IA32_EMULATION CONFIG_SERIAL_8250_CONSOLE ${2:-}"
    # arm64: AArch32 callers (COMPAT) and the PL011 console of qemu's virt machine.
    [[ $ARCH == arm64 ]] && arch_opts='CONFIG_COMPAT CONFIG_SYSVIPC_COMPAT CONFIG_SERIAL_AMBA_PL011_CONSOLE'
    for opt in CONFIG_KPROBES CONFIG_DEBUG_INFO_BTF CONFIG_KPROBE_EVENTS \
        CONFIG_BPF_SYSCALL CONFIG_DEVTMPFS CONFIG_BLK_DEV_INITRD $arch_opts; do
        grep -qx "$opt=y" "$cfg" || echo "$opt"
    done
    # Some kernels build ia32 in but switch it off by default (ia32_emulation= on the command line).
    if grep -qx 'CONFIG_IA32_EMULATION_DEFAULT_DISABLED=y' "$cfg"; then echo "CONFIG_IA32_EMULATION_DEFAULT_DISABLED=y"; fi
}

fetch_kernel() {
    local name=$1 suite=${1%-x32}
    local out=$BASE/kernels/$name flavour meta img deb tmp cfg missing key=$suite
    local -a flavours=(cloud-$ARCH $ARCH)
    local extra=''
    # x32: only the generic flavour has it (the cloud kernels have CONFIG_X86_X32_ABI unset).
    [[ $name == *-x32 ]] && flavours=($ARCH) extra=CONFIG_X86_X32_ABI
    if [[ $REFRESH == 0 && -f $out/kernel.env ]]; then
        # shellcheck disable=SC1091
        (. "$out/kernel.env" && [[ -f $VMLINUZ ]]) && { log "kernel $name: cached ($(. "$out/kernel.env"; echo "$KVER"))"; return; }
    fi
    [[ $ARCH == amd64 ]] || key=$suite-$ARCH
    update_suite "$key"
    for flavour in "${flavours[@]}"; do
        meta=linux-image-$flavour
        # The meta-package depends on the versioned image package: that is the kernel to use.
        img=$(pkg_deps "$key" "$meta" | tr ' |' '\n\n' | grep -E '^linux-image-[0-9]' | head -n1)
        [[ -n $img ]] || { log "$meta ($suite): no image dependency found"; continue; }
        deb=$(download "$key" "$img")
        mkdir -p "$BASE/kernels"
        tmp=$(mktemp -d "$BASE/kernels/.tmp.XXXXXX")
        # Only ./boot (vmlinuz, config, System.map): the initramfs loads no modules.
        dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" ./boot
        cfg=$(ls "$tmp"/boot/config-* | head -n1)
        missing=$(check_config "$cfg" "$extra")
        if [[ -n $missing ]]; then
            log "$img ($suite) lacks: $(echo $missing) - trying the next flavour"
            rm -rf "$tmp"; continue
        fi
        local kver
        kver=${cfg##*/config-}
        rm -rf "$out"; mkdir -p "$out"
        mv "$tmp/boot" "$out/boot"; rmdir "$tmp"
        cat >"$out/kernel.env" <<EOF
NAME=$name
SUITE=$suite
ARCH=$ARCH
FLAVOUR=$flavour
PACKAGE=$img
PACKAGE_VERSION=$(dpkg-deb -f "$deb" Version)
KVER=$kver
VMLINUZ=$out/boot/vmlinuz-$kver
CONFIG=$out/boot/config-$kver
EOF
        log "kernel $name: $img $(dpkg-deb -f "$deb" Version) -> $out/boot/vmlinuz-$kver"
        return
    done
    die "no suitable kernel for $name"
}

# --- qemu + busybox (bookworm), extracted, plus the libraries the host does not have ---
host_has() { # alternative group "a | b" -> true if the host has one installed
    local alt
    for alt in ${1//|/ }; do
        [[ $(dpkg-query -W -f='${db:Status-Status}' "$alt" 2>/dev/null) == installed ]] && return 0
    done
    return 1
}

fetch_tools() {
    local suite=$TOOLS_SUITE qdir=$BASE/qemu bdir=$BASE/busybox
    if [[ $REFRESH == 0 && -f $qdir/.done && -f $bdir/.done ]]; then
        log "qemu + busybox: cached"; return
    fi
    update_suite "$suite"
    # Walk Depends from qemu-system-x86: fetch each lib*/qemu-* package the host lacks (others,
    # e.g. adduser, are irrelevant to running the binary). ldd checks the result below.
    local -a queue=(qemu-system-x86 qemu-system-data seabios) debs=()
    local qbin=$qdir/usr/bin/qemu-system-x86_64 libpath
    # arm64 guests boot the kernel directly on the virt machine: no firmware.
    [[ $ARCH == arm64 ]] && queue=(qemu-system-arm) qbin=$qdir/usr/bin/qemu-system-aarch64
    local -A seen=()
    local pkg group first alt
    while ((${#queue[@]})); do
        pkg=${queue[0]}; queue=("${queue[@]:1}")
        [[ -n ${seen[$pkg]:-} ]] && continue
        seen[$pkg]=1
        debs+=("$(download "$suite" "$pkg")")
        while read -r group; do
            [[ -n $group ]] || continue
            host_has "$group" && continue
            first=''
            for alt in ${group//|/ }; do   # first alternative that is a real package
                [[ -n $(pkg_field "$suite" "$alt" Version) ]] && { first=$alt; break; }
            done
            [[ -n $first ]] || continue
            case $first in lib* | qemu-* | seabios | ipxe-qemu) queue+=("$first") ;; esac
        done < <(pkg_deps "$suite" "$pkg")
    done
    rm -rf "$qdir"; mkdir -p "$qdir"
    local d
    for d in "${debs[@]}"; do dpkg-deb -x "$d" "$qdir"; done
    printf '%s\n' "${debs[@]##*/}" >"$qdir/packages.txt"

    libpath=$(qemu_libpath "$qdir")
    local notfound
    notfound=$(LD_LIBRARY_PATH=$libpath ldd "$qbin" | grep 'not found' || true)
    [[ -z $notfound ]] || die "qemu still misses libraries: $notfound"
    LD_LIBRARY_PATH=$libpath "$qbin" --version | head -n1 >"$qdir/version.txt" ||
        die "cached qemu does not run"
    if [[ $ARCH == amd64 ]]; then
        for f in bios-256k.bin kvmvapic.bin linuxboot_dma.bin; do
            find "$qdir/usr/share" -name "$f" | grep -q . || die "BIOS file $f missing from cache"
        done
    fi
    touch "$qdir/.done"
    log "qemu: $(cat "$qdir/version.txt") (${#debs[@]} packages)"

    rm -rf "$bdir"; mkdir -p "$bdir"
    if [[ $ARCH == amd64 ]]; then
        dpkg-deb -x "$(download "$suite" busybox-static)" "$bdir"
        "$bdir/bin/busybox" true || die "busybox-static does not run"
    else
        update_suite "$suite-$ARCH"
        dpkg-deb -x "$(download "$suite-$ARCH" busybox-static)" "$bdir"
        [[ -f $bdir/bin/busybox ]] || die "busybox-static ($ARCH) has no bin/busybox"
    fi
    touch "$bdir/.done"
    if [[ $ARCH == amd64 ]]; then log "busybox: $("$bdir/bin/busybox" | head -n1)"; else log "busybox: $ARCH"; fi
}

# Library folders inside the extracted qemu tree (shared with run-in-vm.sh's logic).
qemu_libpath() {
    local q=$1
    echo "$q/usr/lib/x86_64-linux-gnu:$q/lib/x86_64-linux-gnu:$q/usr/lib/x86_64-linux-gnu/ceph"
}

# --- strace for the arm64 guests: strace:arm64 and its lib* dependencies, unpacked, not installed ---
fetch_strace() {
    local suite=$TOOLS_SUITE-$ARCH sdir=$BASE/strace
    if [[ $REFRESH == 0 && -f $sdir/.done ]]; then log "strace ($ARCH): cached"; return; fi
    update_suite "$suite"
    local -a queue=(strace) debs=()
    local -A seen=()
    local pkg group alt
    while ((${#queue[@]})); do
        pkg=${queue[0]}; queue=("${queue[@]:1}")
        [[ -n ${seen[$pkg]:-} ]] && continue
        seen[$pkg]=1
        debs+=("$(download "$suite" "$pkg")")
        while read -r group; do
            alt=${group%% *}   # first alternative; only libraries matter to running the binary
            case $alt in lib*) queue+=("$alt") ;; esac
        done < <(pkg_deps "$suite" "$pkg")
    done
    rm -rf "$sdir"; mkdir -p "$sdir"
    local d
    for d in "${debs[@]}"; do dpkg-deb -x "$d" "$sdir"; done
    printf '%s\n' "${debs[@]##*/}" >"$sdir/packages.txt"
    [[ -f $sdir/usr/bin/strace ]] || die "strace ($ARCH) has no usr/bin/strace"
    touch "$sdir/.done"
    log "strace ($ARCH): ${debs[*]##*/}"
}

for s in "${KERNELS[@]}"; do fetch_kernel "$s"; done
fetch_tools
[[ $ARCH == amd64 ]] || fetch_strace
# apt's binary caches (~60 MB per suite) are rebuilt from the lists whenever needed.
rm -f "$CACHE"/apt/*/cache/*.bin
log "done: cache in $CACHE ($(du -sh "$CACHE" | cut -f1); downloaded .debs: $(du -sh "$CACHE/debs" | cut -f1))"
