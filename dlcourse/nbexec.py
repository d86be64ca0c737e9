"""Run a notebook headless, as the book build and the grader do: nbclient, a kernel over Unix sockets, and an
Output-widget stand-in that never writes to the kernel's shell channel.

    client = notebook_client(nb, sockets_dir, timeout=600, resources={"metadata": {"path": folder}})
    client.execute(cleanup_kc=True)   # we made the kernel manager, so we ask nbclient to shut its kernel down

Why not plain ``NotebookClient(nb).execute()``:

* **The stall.** Now and then a run waited forever on a kernel that sat idle (four times in book builds, once in
  nbgrader's autograde, with ipykernel 7.4 and 6.31 alike; not seen under nbval, which does not stand in for
  widgets). Both times it could be inspected (chapter 8 in a book build, chapter 1 under nbgrader) the kernel had
  just run a cell that drew into an ``ipywidgets.Output``. nbclient stands in for the browser's Output widget, and
  for every output captured
  there it sends the widget's whole output list back to the kernel as a ``comm_msg`` on the shell channel, from its
  IOPub handler, while the main coroutine waits on that same socket for the cell's reply (the course's widgets
  redraw a PNG on every change: dozens of such sends per widget cell). :class:`QuietOutputWidget` keeps the
  capture and drops the echo, which no one reads: the kernel never looks at its Output widgets' ``outputs``.
* **Ports.** Kernels started side by side picked the same free TCP port now and then ("Kernel died before
  replying to kernel_info", "Address already in use"); Unix sockets in a folder of the caller's cannot collide.
* **A blocking kernel manager** (``jupyter_client.KernelManager``) would block nbclient's event loop in
  ``get_msg(timeout=None)``: no cell timeout, no dead-kernel detection. The manager here is the asynchronous one
  nbclient itself uses.
"""

from __future__ import annotations

import os

from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.output_widget import OutputWidget


class QuietOutputWidget(OutputWidget):
    """nbclient's Output-widget stand-in without the echo of captured outputs to the kernel (see the module)."""

    def sync_state(self) -> None:
        pass


WIDGET_REGISTRY = {"@jupyter-widgets/output": {"OutputModel": QuietOutputWidget}}


def notebook_client(nb, sockets_dir: str, **kwargs) -> NotebookClient:
    """An nbclient ``NotebookClient`` for ``nb`` whose kernel listens on Unix sockets in ``sockets_dir``."""
    km = AsyncKernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(str(sockets_dir), "kernel"))
    client = NotebookClient(nb, km=km, **kwargs)
    client.widget_registry = WIDGET_REGISTRY
    return client
