"""
The tlsecho twistd plugin; the module it names is imported only when used.
"""

from twisted.application.service import ServiceMaker

serviceMaker = ServiceMaker(
    "tlsecho", "tlsecho.tap", "TLS echo server with a single TLS settings object", "tlsecho"
)
