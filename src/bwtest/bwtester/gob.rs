//! The part of Go's `encoding/gob` format that bwtester's messages use.
//!
//! scion-apps' bwtester encodes its `Parameters` and `Result` structs each with a fresh
//! `gob.Encoder`, so every encoding is a self-contained gob stream of two length-delimited
//! messages: the type definition of the struct, then the value. This module writes exactly the
//! bytes Go writes for structs whose fields are signed integers (`int64`, `time.Duration`),
//! unsigned integers (`uint16`) and byte strings (`[]byte`), and reads what any Go encoder
//! writes for such structs (other struct names, other field orders, extra fields, older
//! versions' extra `time.Time` field), with Go's own leniencies, so that whatever a Go
//! `gob.Decoder` accepts we accept with the same values, and whatever it rejects we reject.
//!
//! Written from the format description in Go's `encoding/gob/doc.go` and checked against the
//! bytes of Go's encoder and the verdicts of Go's decoder (the vectors in `testdata/`).
//!
//! The format, bottom-up:
//! - unsigned integer: below 128 one byte; otherwise a byte holding minus the number of bytes
//!   (1 to 8) followed by the value big-endian (Go writes the minimal length; reads any).
//! - signed integer `i`: the unsigned integer `i << 1` for `i >= 0`, `(!i << 1) | 1` otherwise.
//! - byte string: its length as unsigned integer, then the bytes.
//! - struct: for each field whose value is not zero, the field number's increase over the
//!   previous field (starting at -1) as unsigned integer, then the value; a 0 ends the struct.
//!   A struct also ends where its message ends.
//! - message: its length as unsigned integer, then either a type definition (the negated new
//!   type id as signed integer and a `wireType` struct) or a value (its type id as signed
//!   integer, then the struct). User type ids start at 64; Go hands them out per process in the
//!   order types are first encoded, so bwtestclient (whose first gob type is `Parameters`) and
//!   bwtestserver (whose first is `Result`) both use 64, as we do.

use std::collections::HashMap;

/// Go's `firstUserId`: the lowest type id a stream may define.
pub const FIRST_USER_ID: i32 = 64;
/// Go's `tooBig` on 64-bit platforms: the largest message length Go's decoder takes.
const TOO_BIG: u64 = 1 << 33;

// Builtin gob type ids.
const T_BOOL: i32 = 1;
const T_INT: i32 = 2;
const T_UINT: i32 = 3;
const T_FLOAT: i32 = 4;
const T_BYTES: i32 = 5;
const T_STRING: i32 = 6;
const T_COMPLEX: i32 = 7;
const T_INTERFACE: i32 = 8;
/// Builtin struct types whose fields are all basic: a value may name them as its type, and Go
/// then decodes it into any struct by ignoring every field.
const T_COMMON_TYPE: i32 = 18;
const T_FIELD_TYPE: i32 = 21;

/// What a gob stream did wrong. Every input either decodes or gives one of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GobError {
    #[error("gob stream ends early")]
    UnexpectedEnd,
    #[error("gob integer of more than 8 bytes")]
    BadUint,
    #[error("gob message of {0} bytes (too big)")]
    MessageTooBig(u64),
    #[error("gob type id {0} defined twice or reserved")]
    DuplicateType(i32),
    #[error("extra data after a gob type definition")]
    ExtraDataAfterType,
    #[error("gob type definition: {0}")]
    BadTypeDefinition(&'static str),
    #[error("gob value of undefined type id {0}")]
    UnknownType(i32),
    #[error("gob value of type id {0}, which is not a struct")]
    NotAStruct(i32),
    #[error("gob struct field without a name")]
    EmptyFieldName,
    #[error("gob field {field} has wire type id {wire}, which does not fit")]
    FieldTypeMismatch { field: &'static str, wire: i32 },
    #[error("gob field {0} out of range for its type")]
    FieldOverflow(&'static str),
    #[error("gob struct field number out of range")]
    FieldOutOfRange,
    #[error("gob stream has no field in common with {0}")]
    NoCommonFields(&'static str),
    #[error("gob field of type id {0}: skipping it is not supported")]
    UnsupportedFieldType(i32),
}

/// A field's Go type, as far as the wire cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `int64`, `time.Duration`: gob `int`.
    Int,
    /// `uint16`: gob `uint`, checked against `u16::MAX`.
    Uint16,
    /// `[]byte`: gob `[]byte`.
    Bytes,
}

/// One field of the Go struct we encode or decode into.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
}

/// The Go struct: its name (sent in the type definition, ignored when reading) and fields.
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    pub name: &'static str,
    pub fields: &'static [Field],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Uint(u64),
    Bytes(Vec<u8>),
}

impl Value {
    fn is_zero(&self) -> bool {
        match self {
            Value::Int(v) => *v == 0,
            Value::Uint(v) => *v == 0,
            Value::Bytes(b) => b.is_empty(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding

pub fn put_uint(out: &mut Vec<u8>, v: u64) {
    if v < 0x80 {
        out.push(v as u8);
        return;
    }
    let bytes = v.to_be_bytes();
    let skip = (v.leading_zeros() / 8) as usize;
    out.push((-((8 - skip) as i8)) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

pub fn put_int(out: &mut Vec<u8>, v: i64) {
    let u = if v < 0 {
        (!(v as u64) << 1) | 1
    } else {
        (v as u64) << 1
    };
    put_uint(out, u);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_uint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn put_message(out: &mut Vec<u8>, body: &[u8]) {
    put_uint(out, body.len() as u64);
    out.extend_from_slice(body);
}

/// Appends the gob stream a fresh Go `gob.Encoder` writes for a struct value: the type
/// definition (type id 64) and the value. `values` are in schema order; zero values are left
/// out as Go does.
pub fn encode(out: &mut Vec<u8>, schema: &Schema, values: &[Value]) {
    debug_assert_eq!(values.len(), schema.fields.len());
    let mut body = Vec::with_capacity(128);
    // Type definition: -id, then wireType{StructT: structType{CommonType{Name, Id}, Field}}.
    put_int(&mut body, -i64::from(FIRST_USER_ID));
    body.push(3); // wireType field 2: StructT
    body.push(1); // structType field 0: CommonType
    body.push(1); // CommonType field 0: Name
    put_bytes(&mut body, schema.name.as_bytes());
    body.push(1); // CommonType field 1: Id
    put_int(&mut body, i64::from(FIRST_USER_ID));
    body.push(0); // end of CommonType
    body.push(1); // structType field 1: Field
    put_uint(&mut body, schema.fields.len() as u64);
    for f in schema.fields {
        body.push(1); // fieldType field 0: Name
        put_bytes(&mut body, f.name.as_bytes());
        body.push(1); // fieldType field 1: Id
        put_int(
            &mut body,
            i64::from(match f.kind {
                Kind::Int => T_INT,
                Kind::Uint16 => T_UINT,
                Kind::Bytes => T_BYTES,
            }),
        );
        body.push(0); // end of fieldType
    }
    body.push(0); // end of structType
    body.push(0); // end of wireType
    put_message(out, &body);

    body.clear();
    put_int(&mut body, i64::from(FIRST_USER_ID));
    let mut last: i64 = -1;
    for (i, v) in values.iter().enumerate() {
        if v.is_zero() {
            continue;
        }
        put_uint(&mut body, (i as i64 - last) as u64);
        last = i as i64;
        match v {
            Value::Int(x) => put_int(&mut body, *x),
            Value::Uint(x) => put_uint(&mut body, *x),
            Value::Bytes(b) => put_bytes(&mut body, b),
        }
    }
    body.push(0);
    put_message(out, &body);
}

// ---------------------------------------------------------------------------------------------
// Decoding

struct Cursor<'a> {
    buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn byte(&mut self) -> Result<u8, GobError> {
        let (&b, rest) = self.buf.split_first().ok_or(GobError::UnexpectedEnd)?;
        self.buf = rest;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], GobError> {
        if self.buf.len() < n {
            return Err(GobError::UnexpectedEnd);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// Go's `decodeUint`: any length up to 8 bytes, leading zeros allowed.
    fn uint(&mut self) -> Result<u64, GobError> {
        let b = self.byte()?;
        if b <= 0x7f {
            return Ok(u64::from(b));
        }
        let n = -i32::from(b as i8);
        if n > 8 {
            return Err(GobError::BadUint);
        }
        Ok(self
            .take(n as usize)?
            .iter()
            .fold(0u64, |x, &b| x << 8 | u64::from(b)))
    }

    fn int(&mut self) -> Result<i64, GobError> {
        let u = self.uint()?;
        let i = (u >> 1) as i64;
        Ok(if u & 1 != 0 { !i } else { i })
    }

    /// A `typeId` field inside a type definition: Go's int32 with an overflow check.
    fn type_id(&mut self) -> Result<i32, GobError> {
        i32::try_from(self.int()?).map_err(|_| GobError::BadTypeDefinition("type id out of range"))
    }

    /// Go's `getLength` followed by the bytes.
    fn bytes(&mut self) -> Result<&'a [u8], GobError> {
        let n = self.uint()?;
        if n > self.buf.len() as u64 {
            return Err(GobError::UnexpectedEnd);
        }
        self.take(n as usize)
    }

    /// The next field number of a struct with `count` fields whose last field was `last`;
    /// `None` at the struct's end (a 0 delta, or the end of the message).
    fn next_field(&mut self, last: i64, count: usize) -> Result<Option<i64>, GobError> {
        if self.is_empty() {
            return Ok(None);
        }
        let delta = self.uint()? as i64; // Go: int(uint64): huge deltas turn negative
        if delta < 0 {
            return Err(GobError::FieldOutOfRange);
        }
        if delta == 0 {
            return Ok(None);
        }
        if last >= count as i64 - delta {
            return Err(GobError::FieldOutOfRange);
        }
        Ok(Some(last + delta))
    }
}

/// What a type definition (`wireType`) says. Go keeps every part that was sent; which one
/// counts depends on the use, so we do too.
#[derive(Debug, Default)]
struct WireType {
    array: bool,
    slice: bool,
    map: bool,
    /// `structType.Field`: (name, type id) of each field.
    fields: Option<Vec<(Vec<u8>, i32)>>,
    /// GobEncoder, BinaryMarshaler or TextMarshaler: the value is a byte string.
    marshaled: bool,
}

/// Reads a `CommonType` (name and id), which nothing here needs.
fn common_type(c: &mut Cursor) -> Result<(), GobError> {
    let mut last = -1;
    while let Some(f) = c.next_field(last, 2)? {
        match f {
            0 => {
                c.bytes()?;
            }
            _ => {
                c.type_id()?;
            }
        }
        last = f;
    }
    Ok(())
}

/// Reads a struct of a `CommonType` and `n_ids` further `typeId`/int fields (arrayType:
/// Elem, Len; sliceType: Elem; mapType: Key, Elem; gobEncoderType: none). `int_last` says the
/// last one is an `int` (arrayType.Len) rather than an int32 type id.
fn composite_type(c: &mut Cursor, n_ids: usize, int_last: bool) -> Result<(), GobError> {
    let mut last = -1;
    while let Some(f) = c.next_field(last, 1 + n_ids)? {
        if f == 0 {
            common_type(c)?;
        } else if int_last && f as usize == n_ids {
            c.int()?;
        } else {
            c.type_id()?;
        }
        last = f;
    }
    Ok(())
}

fn struct_type(c: &mut Cursor) -> Result<Vec<(Vec<u8>, i32)>, GobError> {
    let mut fields = Vec::new();
    let mut last = -1;
    while let Some(f) = c.next_field(last, 2)? {
        if f == 0 {
            common_type(c)?;
        } else {
            let n = c.uint()?;
            // Go: the slice's element count is bounded by what it can allocate, and every
            // element must start before the message ends.
            fields.clear();
            for _ in 0..n {
                if c.is_empty() {
                    return Err(GobError::UnexpectedEnd);
                }
                let (mut name, mut id) = (Vec::new(), 0);
                let mut lf = -1;
                while let Some(ff) = c.next_field(lf, 2)? {
                    if ff == 0 {
                        name = c.bytes()?.to_vec();
                    } else {
                        id = c.type_id()?;
                    }
                    lf = ff;
                }
                fields.push((name, id));
            }
        }
        last = f;
    }
    Ok(fields)
}

fn wire_type(c: &mut Cursor) -> Result<WireType, GobError> {
    let mut wt = WireType::default();
    let mut last = -1;
    while let Some(f) = c.next_field(last, 7)? {
        match f {
            0 => {
                composite_type(c, 2, true)?;
                wt.array = true;
            }
            1 => {
                composite_type(c, 1, false)?;
                wt.slice = true;
            }
            2 => wt.fields = Some(struct_type(c)?),
            3 => {
                composite_type(c, 2, false)?;
                wt.map = true;
            }
            _ => {
                composite_type(c, 0, false)?;
                wt.marshaled = true;
            }
        }
        last = f;
    }
    Ok(wt)
}

/// How to read one field of the value.
#[derive(Clone, Copy)]
enum Op {
    Store(usize),
    SkipUint,
    SkipTwoUints,
    SkipBytes,
}

/// Decodes one gob stream holding a value of the struct `schema` (as Go's `Decoder.Decode`
/// into a fresh decoder does). Returns the fields in schema order (`None`: not sent, i.e. zero)
/// and how many bytes the stream took: every message up to and including the value's, which is
/// where Go's `bwtest.Decode*` says it stopped.
pub fn decode(buf: &[u8], schema: &Schema) -> Result<(Vec<Option<Value>>, usize), GobError> {
    let mut types: HashMap<i32, WireType> = HashMap::new();
    let mut rest = Cursor { buf };
    loop {
        // A message: its length, then that many bytes.
        let len = rest.uint()?;
        if len >= TOO_BIG {
            return Err(GobError::MessageTooBig(len));
        }
        if len > rest.buf.len() as u64 {
            return Err(GobError::UnexpectedEnd);
        }
        let mut msg = Cursor {
            buf: rest.take(len as usize)?,
        };
        // Go converts the int64 to its int32 typeId without a check. (An empty message has
        // no type id: an error for Go too.)
        let id = msg.int()? as i32;
        if id >= 0 {
            let values = decode_value(&mut msg, id, &types, schema)?;
            return Ok((values, buf.len() - rest.buf.len()));
        }
        let def = id.wrapping_neg();
        if def < FIRST_USER_ID || types.contains_key(&def) {
            return Err(GobError::DuplicateType(def));
        }
        let wt = wire_type(&mut msg)?;
        if !msg.is_empty() {
            return Err(GobError::ExtraDataAfterType);
        }
        types.insert(def, wt);
    }
}

fn decode_value(
    c: &mut Cursor,
    id: i32,
    types: &HashMap<i32, WireType>,
    schema: &Schema,
) -> Result<Vec<Option<Value>>, GobError> {
    static BUILTIN_FIELDS: [(&[u8], i32); 2] = [(b"Name", T_STRING), (b"Id", T_INT)];
    let builtin: Vec<(Vec<u8>, i32)>;
    let (wire_fields, user_defined): (&[(Vec<u8>, i32)], bool) = match types.get(&id) {
        Some(wt) => (wt.fields.as_deref().ok_or(GobError::NotAStruct(id))?, true),
        None if id == T_COMMON_TYPE || id == T_FIELD_TYPE => {
            // CommonType and fieldType are {Name string; Id typeId}.
            builtin = BUILTIN_FIELDS
                .iter()
                .map(|(n, t)| (n.to_vec(), *t))
                .collect();
            (&builtin, false)
        }
        None if id < FIRST_USER_ID && id > 0 => return Err(GobError::NotAStruct(id)),
        None => return Err(GobError::UnknownType(id)),
    };

    // Go's compileDec: every wire field gets an op, checked before any value is read.
    let mut ops = Vec::with_capacity(wire_fields.len());
    let mut matched = 0;
    for (name, wire) in wire_fields {
        if name.is_empty() {
            return Err(GobError::EmptyFieldName);
        }
        // Go matches exported names only; ours all are, so a match is exported.
        let local = schema
            .fields
            .iter()
            .position(|f| f.name.as_bytes() == name.as_slice());
        if let Some(i) = local {
            let want = match schema.fields[i].kind {
                Kind::Int => T_INT,
                Kind::Uint16 => T_UINT,
                Kind::Bytes => T_BYTES,
            };
            if *wire != want {
                return Err(GobError::FieldTypeMismatch {
                    field: schema.fields[i].name,
                    wire: *wire,
                });
            }
            ops.push(Op::Store(i));
            matched += 1;
            continue;
        }
        ops.push(match *wire {
            T_BOOL | T_INT | T_UINT | T_FLOAT => Op::SkipUint,
            T_COMPLEX => Op::SkipTwoUints,
            T_BYTES | T_STRING => Op::SkipBytes,
            T_INTERFACE => return Err(GobError::UnsupportedFieldType(*wire)),
            other => match types.get(&other) {
                None => return Err(GobError::UnknownType(other)),
                Some(wt) if wt.array || wt.slice || wt.map || wt.fields.is_some() => {
                    // Go skips nested composites too; no bwtester version sends one.
                    return Err(GobError::UnsupportedFieldType(other));
                }
                Some(wt) if wt.marshaled => Op::SkipBytes,
                Some(_) => return Err(GobError::BadTypeDefinition("empty wireType")),
            },
        });
    }
    if user_defined && matched == 0 && !schema.fields.is_empty() && !wire_fields.is_empty() {
        return Err(GobError::NoCommonFields(schema.name));
    }

    let mut values: Vec<Option<Value>> = vec![None; schema.fields.len()];
    let mut last = -1;
    while let Some(f) = c.next_field(last, ops.len())? {
        match ops[f as usize] {
            Op::Store(i) => {
                let field = schema.fields[i];
                values[i] = Some(match field.kind {
                    Kind::Int => Value::Int(c.int()?),
                    Kind::Uint16 => {
                        let v = c.uint()?;
                        if v > u64::from(u16::MAX) {
                            return Err(GobError::FieldOverflow(field.name));
                        }
                        Value::Uint(v)
                    }
                    Kind::Bytes => Value::Bytes(c.bytes()?.to_vec()),
                });
            }
            Op::SkipUint => {
                c.uint()?;
            }
            Op::SkipTwoUints => {
                c.uint()?;
                c.uint()?;
            }
            Op::SkipBytes => {
                c.bytes()?;
            }
        }
        last = f;
    }
    // Whatever follows the struct's end in the value's message is ignored, as Go does.
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uints_as_go_doc_says() {
        let enc = |v: u64| {
            let mut o = Vec::new();
            put_uint(&mut o, v);
            o
        };
        assert_eq!(enc(0), [0x00]);
        assert_eq!(enc(7), [0x07]);
        assert_eq!(enc(256), [0xfe, 0x01, 0x00]);
        assert_eq!(
            enc(u64::MAX),
            [0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
        let mut o = Vec::new();
        put_int(&mut o, -129);
        assert_eq!(o, [0xfe, 0x01, 0x01]);
        for v in [0i64, 1, -1, 63, 64, -65, i64::MAX, i64::MIN, 3_000_000_000] {
            let mut o = Vec::new();
            put_int(&mut o, v);
            assert_eq!(Cursor { buf: &o }.int(), Ok(v));
        }
    }
}
