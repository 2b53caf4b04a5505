"""Private modules of the ``jsflow`` command line (the public entry is ``jsflow.cli``).

Why a package: the CLI is a thin click layer over ``jsflow.host``, but its
pieces (value parsing, rendering, opening a host with the right
registrations, the dev loop) are each easier to read and test on their own.
"""
