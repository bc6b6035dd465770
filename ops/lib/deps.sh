# ops/lib/deps.sh: sourced by ops/test and ops/run. Installs the Debian 12 packages maintq
# needs to build, test and run, when they are missing: one dpkg-query to find what is
# missing, then (as root) one `apt-get update` and one `apt-get install`. Without root it
# names the missing packages and stops, rather than half-working later. It assumes only a
# base Debian 12: no python, no curl.

# To build: compiler, build system and the libraries' -dev packages.
deps_build=(gcc libc6-dev pkg-config meson ninja-build libevent-dev libhiredis-dev libpq-dev
    libcurl4-openssl-dev libjansson-dev libssl-dev)
# For the local stack (ops/stack): servers, their clients, runuser/flock (util-linux),
# useradd (passwd), ps (procps).
deps_stack=(redis-server redis-tools postgresql postgresql-client util-linux passwd procps)
# For the tests: cmocka, and clang with its libFuzzer runtime for the fuzz targets.
deps_test=(libcmocka-dev clang libclang-rt-14-dev jq)
# For running jobs: time zones (scheduler), CA certificates (tls_cert, http checks).
deps_run=(tzdata ca-certificates git)

deps_missing() {
    local p
    for p in "$@"; do
        if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
            printf '%s\n' "$p"
        fi
    done
}

# deps_ensure PACKAGE...: installs the missing ones (root) or fails naming them.
deps_ensure() {
    local missing
    mapfile -t missing < <(deps_missing "$@")
    ((${#missing[@]} > 0)) || return 0
    if [[ $(id -u) -ne 0 ]]; then
        echo "missing Debian packages: ${missing[*]}" >&2
        echo "install them as root: apt-get install --no-install-recommends ${missing[*]}" >&2
        return 1
    fi
    echo "installing: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    if [[ -z ${deps_apt_updated:-} ]]; then
        apt-get update -q >&2
        deps_apt_updated=1
    fi
    apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}
