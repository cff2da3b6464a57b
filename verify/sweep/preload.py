"""Imported once by the sweep's fork server, so that every pool worker forked from it starts warm.

A spawned worker is a fresh interpreter: on its first task it imports torch and the task runner
and pays ``torch.func``'s first-call set-up, 2.7-4.5 CPU seconds per worker (bench/README.md). The
fork server (:func:`verify.sweep.executors.pool_context`) does this once and each worker it forks
inherits it.
"""
from verify.sweep.executors import kill_with_parent, prepare_worker

# The fork server ends with the sweep's process, even in the middle of this preload (otherwise it
# would finish importing first, and hold the resource tracker's pipe meanwhile). No watchdog
# thread here: the workers are forked from this process.
kill_with_parent()
prepare_worker()

import torch  # noqa: E402

import verify.run.runner  # noqa: E402,F401  (the default task runner and everything it imports)

# The first torch.func transform sets up functorch's dispatch (about 1.6 CPU s): done here once.
torch.func.grad(lambda x: (x * x).sum())(torch.ones(1, dtype=torch.float64))
