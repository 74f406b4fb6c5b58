//! Bencode (BEP 3) for everything in this workspace that reads or writes it: .torrent files,
//! the extension protocol, ut_metadata and PEX, tracker responses, DHT messages.
//!
//! * [`Decoder`]: a borrowing reader with a depth limit and an item limit (every value counts,
//!   so one input cannot allocate without bound), and a strict/lenient switch. Strict is BEP 3
//!   as written: dictionary keys sorted and unique, integers and string lengths in canonical
//!   form. Lenient is what real clients, trackers and files send and libtorrent accepts: keys
//!   in any order (the first of duplicate keys wins, later ones are dropped), leading zeros
//!   and `-0`. Each setting can also be chosen on its own.
//! * Raw spans: every list and dictionary keeps the exact bytes it was read from
//!   ([`Dict::raw`], [`List::raw`]), so an info dictionary is hashed as it came, whatever the
//!   order of its keys.
//! * One writer ([`DictWriter`], [`ListWriter`], [`put_bytes`], [`put_int`]): dictionary keys
//!   are sorted when the dictionary is written, so every writer's output is canonical without
//!   each caller keeping its keys in order.
//!
//! Written here rather than taken from `bendy`: bendy has no lenient mode (it rejects the
//! unsorted keys real peers and trackers send), no item limit, and raw spans only by consuming
//! its streaming decoder; the reader is small.

mod read;
mod value;
mod write;

pub use read::{Decoder, Error};
pub use value::{Dict, List, Value};
pub use write::{put_bytes, put_int, DictWriter, ListWriter};

#[cfg(test)]
mod tests;
