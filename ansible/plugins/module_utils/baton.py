# -*- coding: utf-8 -*-
# Copyright: baton's authors
# Apache License 2.0 (see LICENSE at the root of the repository)
"""What baton_upgrade, baton_reload and baton_info share: where an instance's control
socket is, how the `baton` CLI is run, and what its exit statuses mean.

The modules never talk to the control socket themselves: they run the CLI the package
installed (`binary`), with --json, so that the protocol has one client, and read its exit
status (the README's table: 0 done, 1 refused/failed/rolled back, 2 usage, 3 no master,
4 still in flight).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re

# Exit statuses of baton's control verbs (cmd/baton/control.go, `baton help`).
EXIT_DONE = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NO_MASTER = 3
EXIT_IN_FLIGHT = 4

EXIT_MEANING = {
    EXIT_DONE: "done",
    EXIT_FAILED: "the master refused, or the action failed or was rolled back",
    EXIT_USAGE: "usage",
    EXIT_NO_MASTER: "no master to talk to",
    EXIT_IN_FLIGHT: "still in flight: the wait ended while the action goes on",
}

# The shipped units' runtime directory: baton@web and baton-fdstore@web have
# RuntimeDirectory=baton/web, and the master's default control socket is control.sock in it.
RUNTIME_ROOT = "/run/baton"

# A systemd instance name as baton's units take it (%i in /etc/baton/%i.toml): no slash, no
# leading dot, so that it can only name a directory under /run/baton.
_INSTANCE = re.compile(r"^[A-Za-z0-9_:-][A-Za-z0-9_.:-]{0,199}$")

# Go durations as --timeout takes them: "90s", "5m", "1m30s", "250ms".
_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$")

COMMON_ARGS = dict(
    instance=dict(type="str"),
    socket=dict(type="path"),
    binary=dict(type="path", default="/usr/bin/baton"),
    timeout=dict(type="str"),
)


def check_instance(name):
    """Returns an error message when name is not a usable instance name, else None."""
    if not _INSTANCE.match(name or ""):
        return ("instance %r: want 1 to 200 of A-Z a-z 0-9 _ . : - (the %%i of baton@%%i), "
                "not starting with a dot" % (name,))
    return None


def control_socket(module):
    """The control socket the module talks to: `socket`, else
    /run/baton/<instance>/control.sock. Fails the module on a bad instance or socket."""
    sock = module.params.get("socket")
    instance = module.params.get("instance")
    if instance is not None:
        err = check_instance(instance)
        if err:
            module.fail_json(msg=err)
    if sock:
        if not (os.path.isabs(sock) or sock.startswith("@")):
            module.fail_json(msg="socket %r: want an absolute path (or @name, an abstract socket)" % sock)
        return sock
    if instance:
        return os.path.join(RUNTIME_ROOT, instance, "control.sock")
    module.fail_json(msg="one of instance or socket is required")


def check_timeout(module):
    t = module.params.get("timeout")
    if t is not None and not _DURATION.match(t):
        module.fail_json(msg="timeout %r: want a Go duration such as 90s, 5m or 1m30s" % t)


def check_binary(module):
    b = module.params["binary"]
    if not (os.path.isfile(b) and os.access(b, os.X_OK)):
        module.fail_json(msg="binary %s: not an executable file (is baton installed?)" % b)
    return b


def run_verb(module, verb, sock, wait=True, timeout=None):
    """Runs `binary VERB --json --socket SOCK [--wait] [--timeout TIMEOUT]`.

    Returns (rc, reply, words): the CLI's exit status, the master's JSON reply (a dict, or
    None when the CLI printed none: no master, a wait that ended, a usage error) and the
    master's own words: the reply's message or error, else what the CLI wrote on stderr.
    """
    cmd = [module.params["binary"], verb, "--json", "--socket", sock]
    if wait:
        cmd.append("--wait")
    if timeout:
        cmd += ["--timeout", timeout]
    rc, out, err = module.run_command(cmd, environ_update=dict(LC_ALL="C"))
    reply = None
    if out.strip():
        try:
            reply = json.loads(out)
        except ValueError:
            module.fail_json(msg="baton %s: not JSON on stdout (is %s a baton binary?)" % (verb, cmd[0]),
                             stdout=out, stderr=err, baton_exit=rc)
        if not isinstance(reply, dict):
            module.fail_json(msg="baton %s: the reply is not a JSON object" % verb, stdout=out, baton_exit=rc)
    words = ""
    if reply is not None:
        words = reply.get("message") or reply.get("error") or ""
    if not words:
        words = _cli_words(verb, err)
    return rc, reply, words


def _cli_words(verb, stderr):
    """stderr without the CLI's "baton VERB: " prefix on each line."""
    prefix = "baton %s: " % verb
    lines = []
    for line in (stderr or "").splitlines():
        line = line.strip()
        if line.startswith(prefix):
            line = line[len(prefix):]
        if line:
            lines.append(line)
    return "; ".join(lines)


def get_status(module, sock, timeout=None):
    """`baton status --json`: (rc, the status dict or None, words). The CLI's own reply
    wait (30s) unless timeout."""
    rc, reply, words = run_verb(module, "status", sock, wait=False, timeout=timeout)
    st = None
    if rc == EXIT_DONE and reply is not None and isinstance(reply.get("status"), dict):
        st = reply["status"]
    return rc, st, words


def summary(st):
    """pid, generation and version of the master a status describes (Nones without one)."""
    if not st:
        return None, None, None
    return st.get("pid"), st.get("generation"), st.get("version")


def runs_file(pid, path):
    """Whether process pid runs the file at path now (the same inode), or None when that
    cannot be told (no such process here, no permission, no file at path).

    /proc/PID/exe leads to the inode the process was started from even after the file was
    replaced (its link then reads "PATH (deleted)"), so comparing inodes tells a master that
    runs the installed binary from one that runs a binary since replaced, symlinks included.
    """
    try:
        exe = "/proc/%d/exe" % int(pid)
    except (ValueError, TypeError):
        return None
    return same_file(exe, path)


def same_file(a, b):
    """Whether paths a and b lead to the same inode; None when one cannot be read."""
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return None
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def exe_link(pid):
    try:
        return os.readlink("/proc/%d/exe" % int(pid))
    except (OSError, ValueError, TypeError):
        return None
