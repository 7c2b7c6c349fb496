"""
The peer echo servers the benchmark compares tlsecho with, each a small script.

Every peer listens on 127.0.0.1 with the certificate and key it is given, echoes
every byte back, and prints C{listening on 127.0.0.1:PORT} once it listens.
"""
