#!/usr/bin/env python3
"""systemctl stop while a baton-like upgrade is in flight (stdlib only).

Roles: main (M, systemd's main PID, one worker W1), new (C, started by a
double fork so PID 1 is its parent, one worker W2), worker. M handles the
stop signal per $MODE: "commit" = what baton's old master does with QUIT
during an upgrade (MAINPID=<C> + BARRIER=1, then exit), "exit" = drain own
worker and exit. C and workers log every signal and exit 1 s after TERM/QUIT.
"""
import os, signal, socket, subprocess, sys, time, select, array

ME = os.path.abspath(__file__)

def log(*a):
    print(f"[{os.getpid()}]", *a, file=sys.stderr, flush=True)

def notify(msg, fds=()):
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    if path[0] == "@":
        path = "\0" + path[1:]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", list(fds)))] if fds else []
    s.sendmsg([msg.encode()], anc, 0, path)
    s.close()
    return True

def barrier():
    r, w = os.pipe()
    notify("BARRIER=1", fds=[w])
    os.close(w)
    ok = bool(select.select([r], [], [], 5)[0])
    os.close(r)
    return ok

def spawn_worker(tag):
    return subprocess.Popen([sys.executable, ME, "worker", tag])

def stop_child(p, sig=signal.SIGTERM):
    p.send_signal(sig)
    p.wait()

def worker(tag):
    stopping = []
    def h(sig, _):
        log(f"{tag} got {signal.Signals(sig).name}")
        if sig in (signal.SIGTERM, signal.SIGQUIT) and not stopping:
            stopping.append(sig)
            time.sleep(1)
            log(f"{tag} graceful exit")
            sys.exit(0)
    for s in (signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP):
        signal.signal(s, h)
    while True:
        time.sleep(60)

def new_master(wfd):
    os.write(wfd, f"{os.getpid()}\n".encode()); os.close(wfd)
    log(f"C started, ppid={os.getppid()}")
    w2 = spawn_worker("W2")
    stopping = []
    def h(sig, _):
        log(f"C got {signal.Signals(sig).name}")
        if stopping:
            return
        stopping.append(sig)
        stop_child(w2)
        time.sleep(1)
        log("C graceful exit")
        os._exit(0)
    for s in (signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP):
        signal.signal(s, h)
    while True:
        time.sleep(60)

def main():
    mode = os.environ.get("MODE", "commit")
    notify("READY=1\nSTATUS=main")
    w1 = spawn_worker("W1")
    r, w = os.pipe()
    if os.fork() == 0:          # intermediate
        if os.fork() == 0:      # C
            os.close(r)
            for s in (signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP):
                signal.signal(s, signal.SIG_DFL)
            new_master(w)
        os._exit(0)
    os.close(w)
    cpid = int(os.read(r, 32).decode())
    os.close(r)
    log(f"M pid={os.getpid()} started C={cpid}")
    stopping = []
    def h(sig, _):
        log(f"M got {signal.Signals(sig).name} (mode {mode})")
        if stopping:
            return
        stopping.append(sig)
        pfd = os.pidfd_open(cpid)
        if mode == "stopnew":
            signal.pidfd_send_signal(pfd, signal.SIGQUIT)
        stop_child(w1)
        if mode == "stopnew":
            select.select([pfd], [], [], 30)
            log(f"M saw C={cpid} exit")
        if mode == "commit":
            log(f"M sends MAINPID={cpid} -> barrier {notify(f'MAINPID={cpid}') and barrier()}")
        log("M exits 0")
        os._exit(0)
    for s in (signal.SIGTERM, signal.SIGQUIT):
        signal.signal(s, h)
    while True:
        time.sleep(60)

if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "worker":
        worker(sys.argv[2])
    else:
        main()
