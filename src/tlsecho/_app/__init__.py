"""
The application: configuration (flags and TOML), the twistd service, listening,
workers, metrics, logs, C{tlsecho check} and the command line.
"""
