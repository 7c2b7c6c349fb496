"""
TLS: settings and material into pyOpenSSL contexts and Twisted connection
creators (server and client), reload, diagnosis of failures, and tlsecho's
TLS transport.  Every call below pyOpenSSL's public API is in
L{tlsecho._tls._openssl_internals}.
"""
