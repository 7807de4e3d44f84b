"""dialsim: a dial-up remote access simulator.

Real POP3 and SMTP bytes over TCP, IPv4 and SLIP or PPP, carried by a simpy
model of modems and a phone line.  See ``docs/`` for the model and its sources.
"""

__version__ = "0.1.0"
