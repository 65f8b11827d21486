"""``hvctl``: the command-line tool over the hvmanager backend (Hyper-V cmdlets for libvirt).

* ``hvctl``: the argument parser, ``main`` and the error/exit-code policy.
* ``commands``: one function per verb, over ``hvmanager.backend`` only.
* ``output``: tables, uptimes, VM records and JSON, as plain functions that are easy to test.

Nothing here imports Qt (import-linter enforces it).
"""
