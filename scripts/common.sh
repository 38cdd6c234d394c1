# Shared by build-and-run and tests/run (sourced, not run).

# Runs a command as root: directly when root already (a fresh Debian or
# Ubuntu used as root has no sudo), else through sudo.
as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    else
        sudo "$@"
    fi
}

# Installs the system packages the build and the tests need, where missing.
install_build_packages() {
    local packages=(clang libelf-dev zlib1g-dev pkg-config make util-linux strace)
    local missing=() package
    for package in "${packages[@]}"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}
