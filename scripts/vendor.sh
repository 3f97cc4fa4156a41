#!/usr/bin/env bash
# Vendor front-end assets from the npm registry into static/vendor/.
#
# Re-runnable: downloads pinned tarballs with `npm pack` into a temp dir,
# checks each tarball against the pinned sha512 integrity (and against what
# the registry reports), copies only the files listed below, then replaces
# static/vendor/{bootstrap,bootstrap-icons,htmx,echarts,sortablejs} and
# static/vendor/VERSIONS. Nothing (tarballs, node_modules) is left in the repo.
#
# To upgrade: change a version, set its *_INTEGRITY to the value printed by
#   npm view NAME@VERSION dist.integrity
# and re-run.
set -euo pipefail

BOOTSTRAP_VERSION="5.3.9"
BOOTSTRAP_INTEGRITY="sha512-20cU0rcfw8WdxtVbmfU+xT2EjvVTw9Ror/h1Qvd7DXCujRg8OO9mdBCsmTHdJFf3BuadmBNJtgIuUXsBqSkk/w=="

BOOTSTRAP_ICONS_VERSION="1.13.2"
BOOTSTRAP_ICONS_INTEGRITY="sha512-fAU1Ly3dH7hwRg+CB8EZ0Vl0fF80zgXHeUVJyfUOKzoURr+TbwISbCW5tKUoQLERaWYG2emTCybcPbD96hdD1A=="

HTMX_VERSION="2.0.11"
HTMX_INTEGRITY="sha512-Thx/WtpeOQqSrqBCw/A1cwGJGg4UrVa3+sW0GmrM3p4gJgO89ecH4qtbnyzDDWFvBTqjnIMCgELTNt636dtamA=="

ECHARTS_VERSION="6.1.0"
ECHARTS_INTEGRITY="sha512-q0yaFPggC9FUdsWH4blavRWFmxdrIodbkoKNAjJudAI6CA9gNPxHtV2RcZNEepZVlk4yvBYkOkbk6HIVpIyHZA=="

SORTABLEJS_VERSION="1.15.7"
SORTABLEJS_INTEGRITY="sha512-Kk8wLQPlS+yi1ZEf48a4+fzHa4yxjC30M/Sr2AnQu+f/MPwvvX9XjZ6OWejiz8crBsLwSq8GHqaxaET7u6ux0A=="

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENDOR_DIR="$REPO_ROOT/static/vendor"
VENDOR_SUBDIRS=(bootstrap bootstrap-icons htmx echarts sortablejs)

for tool in npm tar openssl base64 install; do
    command -v "$tool" >/dev/null 2>&1 || { echo "error: '$tool' not found" >&2; exit 1; }
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/vendor.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
STAGE="$WORK/stage"     # assembled static/vendor content
mkdir -p "$STAGE"
VERSIONS_FILE="$STAGE/VERSIONS"
: >"$VERSIONS_FILE"   # format: "name version integrity", then indented "src-in-package -> path-under-static/vendor"

# fetch NAME VERSION EXPECTED_INTEGRITY -> sets PKG_DIR (extracted package root)
fetch() {
    local name="$1" version="$2" expected="$3"
    local dl="$WORK/dl/$name" registry_integrity tarball actual

    registry_integrity="$(npm view "$name@$version" dist.integrity 2>/dev/null)"
    if [[ "$registry_integrity" != "$expected" ]]; then
        echo "error: $name@$version: registry integrity '$registry_integrity' != pinned '$expected'" >&2
        exit 1
    fi

    mkdir -p "$dl"
    # --ignore-scripts: never run package lifecycle scripts.
    (cd "$dl" && npm pack --ignore-scripts --silent "$name@$version" >/dev/null)
    tarball="$(find "$dl" -maxdepth 1 -name '*.tgz' -print -quit)"
    [[ -n "$tarball" ]] || { echo "error: npm pack produced no tarball for $name@$version" >&2; exit 1; }

    actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
    if [[ "$actual" != "$expected" ]]; then
        echo "error: $name@$version: tarball integrity '$actual' != pinned '$expected'" >&2
        exit 1
    fi

    mkdir -p "$dl/x"
    tar -xzf "$tarball" -C "$dl/x" --no-same-owner
    PKG_DIR="$dl/x/package"
    [[ -d "$PKG_DIR" ]] || { echo "error: $name@$version: tarball has no package/ dir" >&2; exit 1; }

    printf '%s %s %s\n' "$name" "$version" "$registry_integrity" >>"$VERSIONS_FILE"
    echo "fetched $name@$version ($registry_integrity)"
}

# take SRC_IN_PACKAGE DEST_UNDER_VENDOR
take() {
    local src="$1" dest="$2"
    [[ -f "$PKG_DIR/$src" ]] || { echo "error: missing $src in package" >&2; exit 1; }
    install -D -m 0644 "$PKG_DIR/$src" "$STAGE/$dest"
    printf '    %s -> %s\n' "$src" "$dest" >>"$VERSIONS_FILE"
}

# --- bootstrap ---------------------------------------------------------------
fetch bootstrap "$BOOTSTRAP_VERSION" "$BOOTSTRAP_INTEGRITY"
take dist/css/bootstrap.min.css          bootstrap/css/bootstrap.min.css
take dist/css/bootstrap.min.css.map      bootstrap/css/bootstrap.min.css.map
take dist/js/bootstrap.bundle.min.js     bootstrap/js/bootstrap.bundle.min.js
take dist/js/bootstrap.bundle.min.js.map bootstrap/js/bootstrap.bundle.min.js.map
take LICENSE                             bootstrap/LICENSE

# --- bootstrap-icons ---------------------------------------------------------
fetch bootstrap-icons "$BOOTSTRAP_ICONS_VERSION" "$BOOTSTRAP_ICONS_INTEGRITY"
take font/bootstrap-icons.min.css         bootstrap-icons/bootstrap-icons.min.css
take font/fonts/bootstrap-icons.woff2     bootstrap-icons/fonts/bootstrap-icons.woff2
take font/fonts/bootstrap-icons.woff      bootstrap-icons/fonts/bootstrap-icons.woff
take LICENSE                              bootstrap-icons/LICENSE

# --- htmx --------------------------------------------------------------------
fetch htmx.org "$HTMX_VERSION" "$HTMX_INTEGRITY"
take dist/htmx.min.js                     htmx/htmx.min.js
take LICENSE                              htmx/LICENSE

# --- echarts -----------------------------------------------------------------
fetch echarts "$ECHARTS_VERSION" "$ECHARTS_INTEGRITY"
take dist/echarts.min.js                  echarts/echarts.min.js
take LICENSE                              echarts/LICENSE
# Apache-2.0 asks redistributors to keep NOTICE; LICENSE points at licenses/LICENSE-d3
# for d3-derived code that is compiled into dist/echarts.min.js.
take NOTICE                               echarts/NOTICE
take licenses/LICENSE-d3                  echarts/licenses/LICENSE-d3

# --- sortablejs (the kanban's drag and drop: static/opportunities/kanban.js) -------
fetch sortablejs "$SORTABLEJS_VERSION" "$SORTABLEJS_INTEGRITY"
take Sortable.min.js                      sortablejs/Sortable.min.js
take LICENSE                              sortablejs/LICENSE

# --- checks ------------------------------------------------------------------
# Every url() in the bootstrap-icons css must resolve to a vendored file.
css="$STAGE/bootstrap-icons/bootstrap-icons.min.css"
refs="$(grep -o 'url([^)]*)' "$css" | sed -E 's/^url\(["'\'']?//; s/["'\'']?\)$//; s/[?#].*$//' | sort -u)"
[[ -n "$refs" ]] || { echo "error: no url() references found in $css" >&2; exit 1; }
while IFS= read -r ref; do
    if [[ ! -f "$(dirname "$css")/$ref" ]]; then
        echo "error: bootstrap-icons css references '$ref' which is not vendored" >&2
        exit 1
    fi
    echo "ok: bootstrap-icons url($ref) resolves"
done <<<"$refs"

# --- install into the repo ---------------------------------------------------
mkdir -p "$VENDOR_DIR"
for d in "${VENDOR_SUBDIRS[@]}"; do
    rm -rf "${VENDOR_DIR:?}/$d"
    cp -R "$STAGE/$d" "$VENDOR_DIR/$d"
done
install -m 0644 "$VERSIONS_FILE" "$VENDOR_DIR/VERSIONS"

echo "vendored into $VENDOR_DIR"
