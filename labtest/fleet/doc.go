// Package fleet proves the Ansible collection in ../../ansible on a fleet of real systemd
// hosts: four systemd-lab containers (../../../shared/systemd-lab/lab), each made a fresh
// Debian host (packaging/testdata/lab-fresh-host.sh), baton@web installed by the role
// baton.baton.baton, then rolled with the collection's playbooks while a load generator
// (bench/cmd/load) runs inside every host and counts each failed request.
//
// The scenarios, in order, each on the fleet the one before left:
//
//   - good: a good release (package v2) rolls across the four hosts, serial [1, 25%, 100%]:
//     every host on a new generation of v2, 0 failed requests.
//   - canary: a bad release (package v3, a config whose workers never become ready) is
//     stopped at the canary: baton rolls the canary back itself (same master, generation
//     and version, v2 back on disk), hosts 2-4 are not touched, the play fails with the
//     canary's reason, 0 failed requests.
//   - host3: a release bad on host 3 only (host_vars: workers that exit during the soak), serial
//     1: hosts 1-2 upgraded to v3, host 3 rolled back, host 4 untouched, the play fails
//     naming host 3, 0 failed requests.
//   - rollback: rollback.yml returns hosts 1-2 to v2; hosts 3-4 are not changed; 0 failed
//     requests.
//
// The tests carry the build tag lab, so `go test ./...` skips them; they need root and
// ansible-playbook (Debian 12's ansible 7.7). Run them with `make fleet` (which installs
// ansible when missing) or `go test -tags lab -count=1 -v ./labtest/fleet`.
//
// The hosts are reached with the community.docker.nsenter connection (Debian's ansible
// ships it): a task runs inside the namespaces of the lab's PID 1, so no network, sshd or
// keys are needed. Every assertion reads the hosts itself (`baton status --json`,
// `systemctl show`, dpkg), never trusting the playbook's own report.
package fleet
