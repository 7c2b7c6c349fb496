"""
Network: endpoints with TLS on top, the parsed listen description, the PROXY
protocol, and the echo protocols.  Nothing here imports OpenSSL.
"""
