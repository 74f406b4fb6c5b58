//! bittorrent-over-scion: BitTorrent over QUIC/SCION (multipath) and TCP.
