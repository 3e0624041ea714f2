"""Forks a process at import that outlives the import and holds every inherited descriptor open."""

import os
import time

from small_bug import WideResidual

if os.fork() == 0:
    with open(os.environ.get("HOSTILE_PID_FILE", os.devnull), "w") as handle:
        handle.write(str(os.getpid()))
    while True:
        time.sleep(0.1)


class Net(WideResidual):
    pass
