#!/bin/sh
# collections.sh DIR: make DIR/ansible_collections/baton/baton a symlink to this directory
# (the collection's root) and print DIR, so that
#
#   ANSIBLE_COLLECTIONS_PATH=$(ansible/collections.sh /tmp/coll) ansible-playbook ...
#
# finds baton.baton straight from the work tree (no ansible-galaxy install, no copy to
# keep in sync). Ansible and ansible-test need that path shape; the repository holds the
# collection at ansible/, and no symlink is committed. Safe to run again: the link is
# replaced, anything else at its place is refused.
set -eu
if [ $# -ne 1 ] || [ -z "$1" ]; then
	echo "usage: $0 DIR" >&2
	exit 2
fi
here=$(cd "$(dirname "$0")" && pwd -P)
mkdir -p "$1/ansible_collections/baton"
dir=$(cd "$1" && pwd -P)
link=$dir/ansible_collections/baton/baton
if [ -e "$link" ] && [ ! -L "$link" ]; then
	echo "$0: $link exists and is not a symlink: not replacing it" >&2
	exit 1
fi
ln -sfn "$here" "$link"
echo "$dir"
