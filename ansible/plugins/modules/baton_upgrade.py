#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: baton's authors
# Apache License 2.0 (see LICENSE at the root of the repository)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: baton_upgrade
short_description: Hot-upgrade a baton master to the binary on disk
version_added: "1.0.0"
description:
  - Runs C(baton upgrade --wait --json) against one baton instance and reports what the
    master did, in its own words.
  - The master starts a new master from its binary on disk, which rereads the instance's
    configuration and starts new workers; when they are ready (and after C(upgrade.soak))
    the old generation drains and exits. Any failure before the commit (a config error, a
    worker that fails or never becomes ready, a new master that dies) rolls back by
    itself, and the old generation serves on.
  - Idempotent. When the master in charge already runs the file at C(binary) (its
    C(/proc/PID/exe) is that inode, not a replaced one), nothing is done and the result
    is not changed, unless C(force).
  - Fails, with the master's reason in C(msg), when the upgrade is refused or rolled back
    (exit status 1), when no master answers (3), and when the wait ends while the upgrade
    goes on (4, C(timeout) ran out or C(commit = "manual")).
  - Runs on the target host, as root or as baton's own user (the control socket lets
    only those in).
author:
  - baton's authors (@baton-supervisor)
options:
  instance:
    description:
      - The instance, the C(%i) of C(baton@%i) or C(baton-fdstore@%i). Its control socket
        is C(/run/baton/<instance>/control.sock).
      - One of C(instance) and C(socket) is required.
    type: str
  socket:
    description:
      - The control socket's path, instead of the instance's default (a master with
        C(control_socket) set elsewhere, a master run outside systemd).
    type: path
  binary:
    description:
      - The C(baton) CLI to run, and the file the running master is compared with. A new
        master is started from the path the master was started from (C(exe) in its
        status); the module warns when that is another file.
    type: path
    default: /usr/bin/baton
  timeout:
    description:
      - Passed as C(--timeout) (a Go duration, C(90s), C(5m)). By default the CLI waits
        as long as the master says the upgrade can take at worst (from
        C(upgrade.timeout), C(soak) and C(stop_timeout)).
      - When it ends first the upgrade goes on and the module fails (exit status 4).
    type: str
  force:
    description:
      - Upgrade even when the master already runs the binary on disk (to pick up a
        changed configuration in a new master, or restart every worker without a
        reload).
    type: bool
    default: false
notes:
  - Check mode reads the master's status and says whether it would upgrade; it upgrades
    nothing.
seealso:
  - module: baton.baton.baton_reload
  - module: baton.baton.baton_info
"""

EXAMPLES = r"""
- name: Upgrade baton@web to the installed /usr/bin/baton
  baton.baton.baton_upgrade:
    instance: web
  register: up

- name: Show what happened
  ansible.builtin.debug:
    msg: "{{ up.old_version }} (pid {{ up.old_pid }}) -> {{ up.new_version }} (pid {{ up.new_pid }})"

- name: Upgrade a standalone master, bounding the wait
  baton.baton.baton_upgrade:
    socket: /srv/web/control.sock
    binary: /usr/local/bin/baton
    timeout: 5m

- name: Start a new generation although the binary did not change
  baton.baton.baton_upgrade:
    instance: web
    force: true
"""

RETURN = r"""
changed:
  description: Whether an upgrade was committed (or, with exit status 4, is in flight).
  returned: always
  type: bool
msg:
  description:
    - >-
      The master's own words, for example C(upgrade committed: new master pid 7296 is
      in charge) or C(upgrade rolled back: new master 7476: /etc/baton/web.toml:7:
      worker.count: must be from 1 to 1024 (got 0)); or why nothing was done.
  returned: always
  type: str
baton_exit:
  description:
    - The exit status of C(baton upgrade) (0 done, 1 refused, failed or rolled back,
      2 usage, 3 no master, 4 still in flight).
  returned: when C(baton upgrade) ran
  type: int
  sample: 0
old_pid:
  description: The pid of the master in charge before.
  returned: when a master answered
  type: int
  sample: 7248
new_pid:
  description: The pid of the master in charge after (the same as C(old_pid) when nothing
    changed or the upgrade rolled back).
  returned: when a master answered
  type: int
  sample: 7296
old_generation:
  description: Its generation before (1 for a master started by systemd, +1 at each
    committed upgrade).
  returned: when a master answered
  type: int
  sample: 1
new_generation:
  description: The generation in charge after.
  returned: when a master answered
  type: int
  sample: 2
old_version:
  description: What C(baton version) of the binary the old master runs printed.
  returned: when a master answered
  type: str
  sample: v1.2.0
new_version:
  description: The version the master in charge after runs.
  returned: when a master answered
  type: str
  sample: v1.3.0
old_exe:
  description: Where C(/proc/PID/exe) of the master before leads (C(/usr/bin/baton
    (deleted)) for a binary replaced since it started).
  returned: when a master answered and it could be read
  type: str
status:
  description: The C(status) object of C(baton status --json) after the upgrade (see
    the README of baton, C(baton status)).
  returned: when a master answered after
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.baton.baton.plugins.module_utils.baton import (
    COMMON_ARGS,
    EXIT_DONE,
    EXIT_IN_FLIGHT,
    EXIT_MEANING,
    check_binary,
    check_timeout,
    control_socket,
    exe_link,
    get_status,
    run_verb,
    runs_file,
    same_file,
    summary,
)


def main():
    argument_spec = dict(COMMON_ARGS)
    argument_spec["force"] = dict(type="bool", default=False)
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_one_of=[("instance", "socket")],
        supports_check_mode=True,
    )
    sock = control_socket(module)
    check_timeout(module)
    binary = check_binary(module)

    rc, before, words = get_status(module, sock)
    if before is None:
        module.fail_json(msg="baton status on %s: %s" % (sock, words or EXIT_MEANING.get(rc, "exit %d" % rc)),
                         baton_exit=rc)
    pid, gen, version = summary(before)
    result = dict(changed=False, old_pid=pid, old_generation=gen, old_version=version,
                  new_pid=pid, new_generation=gen, new_version=version, status=before)
    link = exe_link(pid)
    if link is not None:
        result["old_exe"] = link

    # The new master starts from the path the master started from: say so when that is not
    # the binary this module compares with.
    if before.get("exe") and same_file(before["exe"], binary) is False:
        module.warn("the master upgrades from %s, not from binary %s" % (before["exe"], binary))

    current = runs_file(pid, binary)
    if current is None:
        module.warn("cannot tell whether master pid %s runs %s (%s): upgrading" % (pid, binary, link or "no /proc entry"))
    if current and not module.params["force"]:
        result["msg"] = "master pid %s (generation %s, %s) already runs %s: nothing to do" % (pid, gen, version, binary)
        module.exit_json(**result)
    if module.check_mode:
        result["changed"] = True
        result["msg"] = "would upgrade master pid %s (generation %s, %s, %s) to %s" % (pid, gen, version, link, binary)
        module.exit_json(**result)

    rc, reply, words = run_verb(module, "upgrade", sock, timeout=module.params["timeout"])
    result["baton_exit"] = rc
    result["msg"] = words or EXIT_MEANING.get(rc, "exit %d" % rc)
    after = get_status(module, sock)[1]
    if after is not None:
        result["new_pid"], result["new_generation"], result["new_version"] = summary(after)
        result["status"] = after
    if rc == EXIT_DONE:
        result["changed"] = True
        module.exit_json(**result)
    # 4: the new master runs, and the upgrade goes on without us.
    result["changed"] = rc == EXIT_IN_FLIGHT
    module.fail_json(**result)


if __name__ == "__main__":
    main()
