#!/usr/bin/env python3
"""Type=notify-reload probe: on SIGHUP send RELOADING=1+MONOTONIC_USEC, work 1 s,
then per $FAIL: "" -> READY=1; "errno" -> ERRNO=22 then READY=1."""
import os, signal, socket, sys, time

def log(*a):
    print(f"[{os.getpid()}]", *a, file=sys.stderr, flush=True)

def notify(msg):
    p = os.environ["NOTIFY_SOCKET"]
    p = "\0" + p[1:] if p[0] == "@" else p
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.sendto(msg.encode(), p)
    s.close()

hup = []
signal.signal(signal.SIGHUP, lambda *_: hup.append(1))
notify("READY=1")
while True:
    time.sleep(0.05)
    if not hup:
        continue
    hup.clear()
    log("got SIGHUP")
    notify(f"RELOADING=1\nMONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")
    time.sleep(1)
    if os.environ.get("FAIL") == "errno":
        notify("ERRNO=22\nSTATUS=reload failed")
        log("sent ERRNO=22")
    notify("READY=1")
    log("sent READY=1")
