"""QObjects between the Qt views and the blocking backend.

Controllers run every blocking backend call in an executor (qasync puts asyncio on the Qt loop),
turn libvirt events into Qt signals, and own the timers of live figures.
"""
