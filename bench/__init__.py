"""
The tlsecho benchmark: the real ``twistd -n tlsecho`` against the TLS echo servers
people would pick instead, in one interleaved run on loopback.

Run it from the repository root as ``python -m bench`` (``--quick`` for a smoke
run of a few seconds, ``--help`` for the options).  It starts each server in turn
(tlsecho on its lean TLS transport, tlsecho on its previous pyOpenSSL transport,
asyncio + ssl, the same on uvloop, the textbook Twisted echo, and socat where
installed), drives it with load clients that run in their own processes
(``bench/clients``), measures bulk throughput, handshakes, ping-pong round trips,
memory per idle connection and memory growth under a client that never reads,
with the server's CPU per handshake, round trip and MB beside the throughput,
and prints a table of medians with min-max and the ratio tlsecho / peer.  The
results also go to ``bench/results/latest.json``.
"""
