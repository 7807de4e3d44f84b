"""pyserial integration: the ``dialsim://`` URL handler (``protocol_dialsim``).

Register with ``serial.protocol_handler_packages.append("dialsim.pyserial")``.
"""
