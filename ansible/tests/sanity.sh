#!/usr/bin/env bash
# sanity.sh: `ansible-test sanity` of the collection, offline, with Debian's ansible-core.
#
#   ansible/tests/sanity.sh [ANSIBLE-TEST-SANITY-ARGS...]     e.g. --test pylint
#
# ansible-test runs each sanity test that has Python requirements (validate-modules,
# ansible-doc, yamllint, pep8, pylint, runtime-metadata, import) in a virtualenv of its own
# under ~/.ansible/test/venv, which it fills from PyPI with pinned versions: not reachable
# here. It reuses a virtualenv that carries its marker.txt, so this script makes each one
# first, once, as a --system-site-packages venv of /usr/bin/python3: the requirements then
# come from Debian's packages (python3-voluptuous, python3-yaml, python3-jinja2, yamllint,
# python3-pycodestyle, pylint; .ci/run installs them), at Debian's versions, not the pinned
# ones. The virtualenv's path (a hash of ansible-test's pip commands) is read from
# ansible-test's own "does not have pip available" message, so nothing here computes it.
#
# Skipped (each with --skip-test, named on the output):
#   import   it checks that a module imports with nothing but ansible-core's own
#            requirements, in a venv WITHOUT site packages, which needs pip to fill: the
#            modules import only the standard library and ansible.module_utils (the unit
#            tests import and run every one of them).
#   pslint   PowerShell: there is none in the collection (and no pwsh here).
#
# ansible-test needs the collection at .../ansible_collections/baton/baton as a real path
# (it resolves symlinks): the collection is copied to a temporary tree, with the files git
# knows (plus new ones not ignored).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd -P)
py=${PYTHON_VERSION:-$(/usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')}
skip=(import pslint)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/ansible_collections/baton/baton
mkdir -p "$dest"
(cd "$here" && git ls-files --cached --others --exclude-standard -z . | xargs -0 cp --parents -t "$dest")
cd "$dest"

# make_venv PATH: an ansible-test sanity virtualenv from Debian's packages.
make_venv() {
	local v=$1
	case $v in "$HOME"/.ansible/test/venv/*) ;; *) echo "sanity.sh: unexpected venv path $v" >&2; exit 1 ;; esac
	rm -rf "$v"
	/usr/bin/python3 -m venv --system-site-packages --without-pip "$v"
	echo '[]' >"$v/meta.install.json"
	"$v/bin/python" -c 'import json
try:
    import yaml
    from yaml import CLoader
    print(json.dumps(True))
except ImportError as e:
    print(json.dumps(None if "CLoader" not in str(e) else False))' >"$v/meta.yaml.json"
	touch "$v/marker.txt"
	echo "sanity.sh: made $v from Debian's packages"
}

args=(sanity --python "$py" --color no "$@")
for t in "${skip[@]}"; do args+=(--skip-test "$t"); done
echo "sanity.sh: skipped: ${skip[*]} (see the comment at the top of ansible/tests/sanity.sh)"
# Each round makes at most one missing virtualenv; there are at most seven.
for _ in 1 2 3 4 5 6 7 8 9; do
	rc=0
	out=$(ansible-test "${args[@]}" 2>&1) || rc=$?
	venv=$(sed -n 's|^FATAL: Python [0-9.]* at "\(.*\)/bin/python" does not have pip available.*|\1|p' <<<"$out")
	if [ -z "$venv" ]; then
		echo "$out"
		exit "$rc"
	fi
	make_venv "$venv"
done
echo "$out"
echo "sanity.sh: virtualenvs still missing after 9 rounds" >&2
exit 1
