#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: baton's authors
# Apache License 2.0 (see LICENSE at the root of the repository)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: baton_reload
short_description: Reload a baton master (reread its configuration, replace its workers)
version_added: "1.0.0"
description:
  - >-
    Runs C(baton reload --wait --json) against one baton instance, the equivalent of
    C(systemctl reload baton@<instance>) with the master's answer: the master rereads its
    configuration file, starts a new pool of workers and, once every new worker is
    ready, stops the old ones.
  - A reload is an action, not a state; it always reports changed (check mode too, where
    nothing is done).
  - Fails, with the master's reason in C(msg) (a config error with C(FILE:LINE), a new
    worker that failed or was not ready in time), on exit status 1; also on 3 (no master
    answers) and 4 (the wait ended while the reload goes on).
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
      - The control socket's path, instead of the instance's default.
    type: path
  binary:
    description:
      - The C(baton) CLI to run.
    type: path
    default: /usr/bin/baton
  timeout:
    description:
      - Passed as C(--timeout) (a Go duration, C(90s), C(5m)). By default the CLI waits
        as long as the master says the reload can take at worst.
    type: str
notes:
  - Check mode asks the master for its status (so that a missing master fails there too)
    and reloads nothing.
seealso:
  - module: baton.baton.baton_upgrade
  - module: baton.baton.baton_info
"""

EXAMPLES = r"""
- name: Reload baton@web after its configuration changed
  baton.baton.baton_reload:
    instance: web

- name: Reload a master with its control socket elsewhere
  baton.baton.baton_reload:
    socket: /srv/web/control.sock
    timeout: 2m
"""

RETURN = r"""
changed:
  description: True when the master reloaded (or would, in check mode).
  returned: always
  type: bool
msg:
  description:
    - >-
      The master's own words, for example C(reload complete: generation 2: 2/2 workers
      ready) or C(reload failed: bad config: /etc/baton/web.toml:7: worker.count: must
      be from 1 to 1024 (got 0)).
  returned: always
  type: str
baton_exit:
  description: The exit status of C(baton reload) (0, 1, 2, 3 or 4, as for baton_upgrade).
  returned: when C(baton reload) ran
  type: int
pid:
  description: The pid of the master in charge (a reload keeps it).
  returned: when a master answered
  type: int
generation:
  description: Its generation (a reload keeps it).
  returned: when a master answered
  type: int
version:
  description: The version the master runs.
  returned: when a master answered
  type: str
status:
  description: The C(status) object of C(baton status --json) after the reload.
  returned: when a master answered
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
    get_status,
    run_verb,
    summary,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(COMMON_ARGS),
        required_one_of=[("instance", "socket")],
        supports_check_mode=True,
    )
    sock = control_socket(module)
    check_timeout(module)
    check_binary(module)

    rc, before, words = get_status(module, sock)
    if before is None:
        module.fail_json(msg="baton status on %s: %s" % (sock, words or EXIT_MEANING.get(rc, "exit %d" % rc)),
                         baton_exit=rc)
    result = dict(changed=False, status=before)
    result["pid"], result["generation"], result["version"] = summary(before)
    if module.check_mode:
        result["changed"] = True
        result["msg"] = "would reload master pid %s (generation %s)" % (result["pid"], result["generation"])
        module.exit_json(**result)

    rc, reply, words = run_verb(module, "reload", sock, timeout=module.params["timeout"])
    result["baton_exit"] = rc
    result["msg"] = words or EXIT_MEANING.get(rc, "exit %d" % rc)
    after = get_status(module, sock)[1]
    if after is not None:
        result["pid"], result["generation"], result["version"] = summary(after)
        result["status"] = after
    if rc == EXIT_DONE:
        result["changed"] = True
        module.exit_json(**result)
    result["changed"] = rc == EXIT_IN_FLIGHT
    module.fail_json(**result)


if __name__ == "__main__":
    main()
