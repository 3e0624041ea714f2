"""Starts a non-daemon thread when imported (a background logger that never stops)."""

import threading
import time

from small_bug import WideResidual


def _forever() -> None:
    while True:
        time.sleep(0.1)


threading.Thread(target=_forever, name="model-logger").start()


class Net(WideResidual):
    pass
