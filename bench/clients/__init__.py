"""
Load clients, one small script per metric, each run in its own process.

Every client connects to 127.0.0.1:PORT, measures its own window of time and its
own CPU use, and prints one line of JSON on standard output as its last act, so
that the benchmark can show the clients were not the bottleneck.
"""
