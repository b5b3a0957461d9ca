#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: baton's authors
# Apache License 2.0 (see LICENSE at the root of the repository)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: baton_info
short_description: What baton masters run, as facts (baton status --json)
version_added: "1.0.0"
description:
  - Runs C(baton status --json) and returns each master's status object as
    C(ansible_facts.baton[<instance>]) and, for the one instance asked about, as
    C(status).
  - With neither C(instance) nor C(socket), every instance whose control socket is
    under C(/run/baton/*/control.sock) (the shipped units' runtime directories).
  - Changes nothing; runs in check mode as in a real run.
author:
  - baton's authors (@baton-supervisor)
options:
  instance:
    description:
      - The instance, the C(%i) of C(baton@%i) or C(baton-fdstore@%i). Its control socket
        is C(/run/baton/<instance>/control.sock).
    type: str
  socket:
    description:
      - The control socket's path, instead of the instance's default. The fact's key is
        C(instance) when given, else this path.
    type: path
  binary:
    description:
      - The C(baton) CLI to run.
    type: path
    default: /usr/bin/baton
  timeout:
    description:
      - Passed as C(--timeout) (a Go duration); by default the CLI waits 30s for the reply.
    type: str
  allow_missing:
    description:
      - >-
        When no master answers on the instance's socket (exit status 3), or C(binary) is
        not there (baton not installed yet), return its fact as null (C(None)) instead of
        failing: for a host where the instance does not run yet. Discovered instances are
        always returned this way.
    type: bool
    default: false
attributes:
  facts:
    description: Sets C(ansible_facts.baton).
    support: full
notes:
  - C(ansible_facts.baton) holds only what this call saw; a second call with another
    instance replaces it.
seealso:
  - module: baton.baton.baton_upgrade
"""

EXAMPLES = r"""
- name: What runs on the host
  baton.baton.baton_info:
    instance: web
  register: before

- name: Its generation and version
  ansible.builtin.debug:
    msg: "generation {{ before.status.generation }}, {{ before.status.version }}, pid {{ before.status.pid }}"

- name: Every instance under /run/baton
  baton.baton.baton_info:

- name: The same, as facts
  ansible.builtin.debug:
    var: ansible_facts.baton
"""

RETURN = r"""
status:
  description:
    - >-
      The C(status) object of C(baton status --json) of the instance asked about (the
      names are stable: C(pid), C(generation), C(main), C(state), C(role), C(version),
      C(exe), C(config), C(started_at), C(uptime), C(line), C(last_error), C(step),
      C(listeners), C(workers), C(reload), C(upgrade), C(history); see baton's README,
      C(baton status)).
    - Null when no master answers and C(allow_missing); empty when neither C(instance)
      nor C(socket) was given.
  returned: always
  type: dict
  sample:
    pid: 7296
    generation: 2
    main: true
    state: serving
    role: in charge
    version: v1.3.0
    exe: /usr/bin/baton
    line: "generation 2: 2/2 workers ready"
exe:
  description: Where C(/proc/PID/exe) of the instance's master leads
    (C(/usr/bin/baton (deleted)) when the binary was replaced since it started).
  returned: when a master answered and it could be read
  type: str
runs_binary:
  description: Whether the instance's master runs the file at C(binary) now (what
    baton.baton.baton_upgrade compares); null when that cannot be told.
  returned: when a master answered
  type: bool
ansible_facts:
  description: Facts.
  returned: always
  type: complex
  contains:
    baton:
      description: The status object of each instance seen, by instance name (or socket
        path); null for one where no master answers.
      returned: always
      type: dict
"""

import glob
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.baton.baton.plugins.module_utils.baton import (
    COMMON_ARGS,
    EXIT_MEANING,
    EXIT_NO_MASTER,
    RUNTIME_ROOT,
    check_binary,
    check_instance,
    check_timeout,
    control_socket,
    exe_link,
    get_status,
    runs_file,
)


def main():
    argument_spec = dict(COMMON_ARGS)
    argument_spec["allow_missing"] = dict(type="bool", default=False)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    check_timeout(module)
    binary = module.params["binary"]
    if module.params["allow_missing"] and not os.path.exists(binary):
        # Nothing installed yet (a first run in check mode): no master can run either.
        key = module.params["instance"] or module.params["socket"]
        facts = {key: None} if key else {}
        if key:
            control_socket(module)  # a bad instance or socket still fails
        module.exit_json(changed=False, status=None if key else {}, ansible_facts=dict(baton=facts))
    check_binary(module)

    result = dict(changed=False, status={})
    facts = {}
    if module.params["instance"] or module.params["socket"]:
        sock = control_socket(module)
        key = module.params["instance"] or sock
        rc, st, words = get_status(module, sock, module.params["timeout"])
        if st is None:
            if rc != EXIT_NO_MASTER or not module.params["allow_missing"]:
                module.fail_json(msg="baton status on %s: %s" % (sock, words or EXIT_MEANING.get(rc, "exit %d" % rc)),
                                 baton_exit=rc)
        else:
            link = exe_link(st.get("pid"))
            if link is not None:
                result["exe"] = link
            result["runs_binary"] = runs_file(st.get("pid"), binary)
        facts[key] = st
        result["status"] = st
    else:
        for sock in sorted(glob.glob(os.path.join(RUNTIME_ROOT, "*", "control.sock"))):
            name = os.path.basename(os.path.dirname(sock))
            if check_instance(name):
                continue
            rc, st, words = get_status(module, sock, module.params["timeout"])
            if st is None and rc != EXIT_NO_MASTER:
                module.fail_json(msg="baton status on %s: %s" % (sock, words or EXIT_MEANING.get(rc, "exit %d" % rc)),
                                 baton_exit=rc)
            facts[name] = st
    result["ansible_facts"] = dict(baton=facts)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
