"""Sans-IO protocol machines.

Every machine here is fed bytes and a time and hands back bytes, events and the
next deadline it cares about.  Nothing in this package reads a clock, opens a
socket, sleeps, logs or imports anything from the rest of dialsim.
"""
