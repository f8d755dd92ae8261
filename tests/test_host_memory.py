"""scdd.host_memory: freed blocks stay in the process (no page faults on reuse), results unchanged, opt-outs respected."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap

import pytest

from scdd import host_memory

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")

# page faults of 20 rounds of malloc + fill + free of a 48 MB block (above glibc's largest mmap threshold)
FAULTS = textwrap.dedent(
    """
    import ctypes, resource, sys
    from scdd.host_memory import keep_freed_memory
    tuned = keep_freed_memory() if sys.argv[1] == "tuned" else False
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    size = 48 * 2**20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        block = libc.malloc(size)
        ctypes.memset(block, 1, size)
        libc.free(block)
    print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)

# three SGD steps of a small conv net with BatchNorm; the bytes of the trained weights, in hex
TRAINING = textwrap.dedent(
    """
    import hashlib, sys
    from scdd.host_memory import keep_freed_memory
    print(keep_freed_memory())
    import torch
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
        torch.nn.Conv2d(16, 16, 3, padding=1), torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(16, 10),
    )
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    for _ in range(3):
        images, labels = torch.rand(128, 1, 28, 28), torch.randint(0, 10, (128,))
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(images), labels).backward()
        optimizer.step()
    state = net.state_dict()
    print(hashlib.sha256(b"".join(state[k].numpy().tobytes() for k in sorted(state))).hexdigest())
    """
)


def _python(script: str, *args: str, **env: str) -> list[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k not in ("GLIBC_TUNABLES", host_memory.OPT_OUT)}
    done = subprocess.run([sys.executable, "-c", script, *args], env={**environment, **env}, capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_freed_blocks_are_reused_without_page_faults():
    plain_tuned, plain_faults = _python(FAULTS, "plain")
    tuned, tuned_faults = _python(FAULTS, "tuned")
    assert (plain_tuned, tuned) == ("False", "True")
    pages = 48 * 2**20 // 4096
    assert int(plain_faults) >= 10 * pages  # the kernel maps (and zeroes) the block again every round
    assert int(tuned_faults) < 3 * pages  # the block's pages are faulted in once


def test_training_is_bit_identical_with_and_without():
    tuned = _python(TRAINING)
    plain = _python(TRAINING, **{host_memory.OPT_OUT: "1"})
    assert (tuned[0], plain[0]) == ("True", "False")
    assert tuned[1] == plain[1]


@pytest.mark.parametrize(
    "name, value", [(host_memory.OPT_OUT, "1"), ("MALLOC_ARENA_MAX", "2"), ("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0")]
)
def test_leaves_malloc_alone_when_the_environment_tunes_it(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    assert host_memory.tuned_elsewhere()
    assert host_memory.keep_freed_memory() is False


def test_the_command_keeps_freed_memory(monkeypatch):
    cli_main = importlib.import_module("scdd.cli.main")  # the module (``scdd.cli.main`` the attribute is the function)
    calls = []
    monkeypatch.setattr(cli_main, "keep_freed_memory", lambda: calls.append(True))
    with pytest.raises(SystemExit):
        cli_main.main(["--help"])
    assert calls == [True]
