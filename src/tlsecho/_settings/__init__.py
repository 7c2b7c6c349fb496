"""
Settings and files: the option table, the TLS settings value, and the material
loaded from files (certificates, keys, trust roots, CRLs, staples, ticket keys).
Pure: C{cryptography} only, no reactor, no pyOpenSSL.
"""
