"""Targets that fail on purpose, so the runner's own checks can be tested. Picked by the runner's ``--kind``-less API:
each one is written to a file of its own by the test (the runner finds settings by reading a target's source)."""

CRASHING = '''
def fuzz_one_input(data: bytes) -> None:
    if len(data) >= 2 and data[0] == 0x42:
        raise ValueError("found the crash")
'''

GREEDY = '''
MEMORY_BUDGET_MB = 64

_held = []


def fuzz_one_input(data: bytes) -> None:
    if data:
        _held.append(bytearray(b"x" * (512 << 20)))
'''

SLOW = '''
import time


def fuzz_one_input(data: bytes) -> None:
    if data:
        time.sleep(30)
'''

CLEAN = '''
def fuzz_one_input(data: bytes) -> None:
    data.decode("utf-8", errors="replace")
'''
