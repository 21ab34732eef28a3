"""Targets that fail on purpose, so the runner's own checks can be tested. Each is written to a file of its own by
the test (the runner reads a target's settings from its source)."""

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

UNTOUCHED = '''
import numpy as np

MEMORY_BUDGET_MB = 64


def fuzz_one_input(data: bytes) -> None:
    if data:
        np.empty(2**28, np.float32)  # 1 GiB asked for, never touched: invisible in the resident set
'''
