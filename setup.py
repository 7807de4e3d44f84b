"""Build of dialsim's compiled modules (metadata: pyproject.toml): the V.42bis
encoder/decoder, the RFC 1662 async-HDLC framing, the RFC 1144 VJ header
compressor/decompressor and the IPv4/TCP segment codec.  Each has a pure-Python reference beside it
(DEVELOPERS.md, "Compiled code")."""

from setuptools import Extension, setup

FLAGS = ["-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers"]
OCTETS = ["dialsim/proto/_octets.h"]  # network byte order, shared by _vj.c and _tcpip.c

setup(
    ext_modules=[
        Extension("dialsim.link._v42bis", ["dialsim/link/_v42bis.c"], extra_compile_args=FLAGS),
        Extension("dialsim.proto._hdlc", ["dialsim/proto/_hdlc.c"], extra_compile_args=FLAGS),
        Extension("dialsim.proto._vj", ["dialsim/proto/_vj.c"], depends=OCTETS, extra_compile_args=FLAGS),
        Extension("dialsim.proto._tcpip", ["dialsim/proto/_tcpip.c"], depends=OCTETS,
                  extra_compile_args=FLAGS),
    ]
)
