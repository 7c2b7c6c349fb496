"""
Hostile peers: the threat model of tlsecho, as code.

Each module here builds one kind of attacker from raw parts (certificates made
with C{cryptography}/C{trustme}, raw bytes on sockets), and the matching
C{tests/test_attacks_*.py} file performs the attack against the real server or
client and asserts the safe outcome.  Read the module docstrings in order to
read what a peer can try and what tlsecho promises in return:

- C{names}: certificates whose names cannot be read or used (client-side
  hostname checks, server-side allow lists).
- C{connections}: peers that make the server describe them (addresses,
  identities, reasons) with hostile text, to leak slots or inject log lines.
- C{proxy}: PROXY protocol headers from untrusted, split, huge or malformed
  senders.
- C{flights}: handshake flights larger than one 32 KiB read.
- C{streams}: servers that send more than was asked for.
- C{files}: secret files with the wrong permissions or content.
- C{revocation}: CRLs, OCSP staples and sessions that must not be waved through.
- C{service}: shutdown, metrics series and the metrics listener under abuse.
"""
