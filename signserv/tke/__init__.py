"""TKE crypto-unit administration: the wire formats both sides share (``wire``), the client that
administers crypto units through a signing service (``client``, ``cli``) and the crypto units
themselves, emulated (``emulator``)."""
