//! Local SCION network.
