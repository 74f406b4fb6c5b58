//! The saved form of a node: a bencoded dictionary `{id, kind, nodes, nodes6}` with the node lists in
//! the same compact form as KRPC (so an IP state and a SCION state cannot be mixed up silently:
//! the entry sizes differ).

use crate::addr::{DhtAddr, Family};
use bt_bencode::{DictWriter, Value};

use crate::engine::DhtError;
use crate::id::Id;
use crate::krpc::{self, NodeInfo, Response};

pub(crate) struct State<A> {
    pub id: Id,
    pub nodes: Vec<NodeInfo<A>>,
}

pub(crate) fn encode<A: DhtAddr>(id: &Id, nodes: &[NodeInfo<A>]) -> Vec<u8> {
    let r = Response {
        id: *id,
        nodes: nodes.to_vec(),
        values: Vec::new(),
        token: None,
    };
    let mut d = DictWriter::new();
    d.bytes("id", id.0).bytes("kind", A::KIND);
    for (key, family) in [("nodes", Family::V4), ("nodes6", Family::V6)] {
        d.bytes(key, krpc::encode_nodes(&r, family));
    }
    d.finish()
}

pub(crate) fn decode<A: DhtAddr>(b: &[u8]) -> Result<State<A>, DhtError> {
    let bad = |e: &dyn std::fmt::Display| DhtError::BadState(e.to_string());
    let root = krpc::DECODER.decode(b).map_err(|e| bad(&e))?;
    let id = root
        .get(b"id")
        .and_then(Value::as_bytes)
        .and_then(Id::from_slice)
        .ok_or_else(|| bad(&"missing 'id'"))?;
    let kind = root.get(b"kind").and_then(Value::as_bytes);
    if kind != Some(A::KIND.as_bytes()) {
        return Err(bad(&format!(
            "saved for addresses of kind {:?}, not {}",
            kind.map(String::from_utf8_lossy),
            A::KIND
        )));
    }
    let mut nodes = Vec::new();
    // The KRPC cap per list does not apply to a saved table: read the lists chunk by chunk.
    for (key, family) in [(&b"nodes"[..], Family::V4), (b"nodes6", Family::V6)] {
        let Some(v) = root.get(key) else { continue };
        let list = v
            .as_bytes()
            .ok_or_else(|| bad(&"node list is not a string"))?;
        let entry = 20 + A::compact_len(family);
        if !list.len().is_multiple_of(entry) {
            return Err(bad(&format!(
                "node list of {} bytes is not a multiple of {entry} (state of another address kind?)",
                list.len()
            )));
        }
        for chunk in list.chunks(entry * krpc::MAX_NODES) {
            let mut part = Vec::new();
            let wrapped = Value::Bytes(chunk);
            krpc::decode_nodes(Some(&wrapped), family, "nodes", &mut part).map_err(|e| bad(&e))?;
            nodes.extend(part);
        }
    }
    Ok(State { id, nodes })
}
