#!/usr/bin/env bash
# Installs the system tools the tests run, as Debian packages, when any is missing.
#   scripts/install-test-tools.sh test    # make test:  promtool/prometheus, a Java runtime (PySpark),
#                                         #             PostgreSQL (the database-store tests)
#   scripts/install-test-tools.sh smoke   # make smoke: podman and what rootless podman needs
# As root it runs apt-get; otherwise it names the command to run and fails. When everything is
# there it only asks dpkg and PATH, so it is fast and safe to run before every `make test`.
set -euo pipefail

# command:package — a tool counts as present when its command is on PATH or its package is installed
# (Debian keeps PostgreSQL's initdb off PATH, under /usr/lib/postgresql/N/bin: its package decides).
test_tools=(promtool:prometheus prometheus:prometheus java:default-jre-headless initdb:postgresql)
smoke_tools=(podman:podman runc:runc debootstrap:debootstrap newuidmap:uidmap
    fuse-overlayfs:fuse-overlayfs slirp4netns:slirp4netns)

installed() {
    [[ "$(dpkg-query --show --showformat='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

missing_packages() {
    local entry command package
    for entry in "$@"; do
        command=${entry%%:*} package=${entry#*:}
        command -v "$command" >/dev/null 2>&1 || installed "$package" || echo "$package"
    done | sort -u
}

tools=() need_kubectl=no
for group in "${@:-test}"; do
    case "$group" in
    test) tools+=("${test_tools[@]}") need_kubectl=yes ;;
    smoke) tools+=("${smoke_tools[@]}") ;;
    *) echo "usage: $0 [test|smoke]..." >&2 && exit 2 ;;
    esac
done

mapfile -t missing < <(missing_packages "${tools[@]}")
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        echo "error: the tests need system packages that are missing; run:" \
            "sudo apt-get install --no-install-recommends ${missing[*]}" >&2
        exit 1
    fi
    echo "installing ${missing[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}" \
        >/dev/null
fi

# kubectl renders k8s/ in the platform tests; Debian's kubernetes-client is too old for them.
if [[ $need_kubectl == yes ]] && ! command -v kubectl >/dev/null 2>&1; then
    echo "error: kubectl not found; install kubectl 1.31 or newer" \
        "(https://kubernetes.io/docs/tasks/tools/)" >&2
    exit 1
fi
