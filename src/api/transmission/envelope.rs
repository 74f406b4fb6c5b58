//! The RPC's frame: a request `{"method", "arguments", "tag"}` and its answer `{"result",
//! "arguments", "tag"}` — always HTTP 200; `result` is `success` or the error's message — and
//! typed access to the arguments, which refuses a wrong type or an argument the method does
//! not take.

use serde_json::{Map, Value};

use crate::api::PathError;
use crate::client::control::ControlError;

/// Why a method failed; its text is the answer's `result`.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The request itself: not JSON, no method, an argument of the wrong type or unknown.
    #[error("{0}")]
    BadRequest(String),
    #[error("no method name")]
    NoMethod,
    #[error("method name not recognized: {0:?}")]
    UnknownMethod(String),
    /// What Transmission can do and this daemon cannot (yet): named, never faked.
    #[error("{what} is not supported by this daemon: {why}")]
    Unsupported { what: String, why: &'static str },
    #[error("{0}")]
    Control(#[from] ControlError),
    #[error("{0}")]
    Path(#[from] PathError),
}

impl RpcError {
    pub fn bad(msg: impl Into<String>) -> Self {
        Self::BadRequest(msg.into())
    }

    pub fn unsupported(what: impl Into<String>, why: &'static str) -> Self {
        Self::Unsupported {
            what: what.into(),
            why,
        }
    }
}

impl From<crate::api::ApiFailure> for RpcError {
    fn from(f: crate::api::ApiFailure) -> Self {
        Self::BadRequest(f.message)
    }
}

pub type RpcResult<T> = Result<T, RpcError>;

/// A parsed request.
pub struct Request {
    pub method: String,
    pub args: Args,
}

/// Parses a request body; the tag (a number) is returned even when the rest is bad, so the
/// error answer carries it.
pub fn parse(body: &[u8]) -> (Option<Value>, RpcResult<Request>) {
    let top: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return (
                None,
                Err(RpcError::bad(format!("the body is not JSON: {e}"))),
            )
        }
    };
    let Value::Object(mut top) = top else {
        return (
            None,
            Err(RpcError::bad("the request must be a JSON object")),
        );
    };
    let tag = top.remove("tag").filter(Value::is_number);
    let method = match top.remove("method") {
        Some(Value::String(m)) => m,
        Some(_) => return (tag, Err(RpcError::bad("method must be a string"))),
        None => return (tag, Err(RpcError::NoMethod)),
    };
    let args = match top.remove("arguments") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return (tag, Err(RpcError::bad("arguments must be an object"))),
    };
    if let Some(k) = top.keys().next() {
        return (
            tag,
            Err(RpcError::bad(format!("unknown key {k:?} in the request"))),
        );
    }
    (
        tag,
        Ok(Request {
            method,
            args: Args(args),
        }),
    )
}

/// The answer's body.
pub fn answer(tag: Option<Value>, result: RpcResult<Map<String, Value>>) -> Value {
    let mut top = Map::new();
    match result {
        Ok(arguments) => {
            top.insert("arguments".into(), Value::Object(arguments));
            top.insert("result".into(), "success".into());
        }
        Err(e) => {
            top.insert("arguments".into(), Value::Object(Map::new()));
            top.insert("result".into(), e.to_string().into());
        }
    }
    if let Some(t) = tag {
        top.insert("tag".into(), t);
    }
    Value::Object(top)
}

/// A method's arguments, taken one by one; whatever is left at [`Args::finish`] was not
/// understood and is refused.
#[derive(Debug, Default)]
pub struct Args(pub Map<String, Value>);

impl Args {
    pub fn take(&mut self, key: &str) -> Option<Value> {
        self.0.remove(key)
    }

    pub fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// A boolean (Transmission also takes 0 and 1).
    pub fn bool(&mut self, key: &str) -> RpcResult<Option<bool>> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(Value::Number(n)) if n.as_i64() == Some(0) => Ok(Some(false)),
            Some(Value::Number(n)) if n.as_i64() == Some(1) => Ok(Some(true)),
            Some(v) => Err(wrong(key, "a boolean", &v)),
        }
    }

    pub fn int(&mut self, key: &str) -> RpcResult<Option<i64>> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64()),
            Some(v) => Err(wrong(key, "an integer", &v)),
        }
    }

    /// A number that must not be negative.
    pub fn count(&mut self, key: &str) -> RpcResult<Option<u64>> {
        match self.int(key)? {
            Some(n) => u64::try_from(n)
                .map(Some)
                .map_err(|_| RpcError::bad(format!("{key} must not be negative, not {n}"))),
            None => Ok(None),
        }
    }

    pub fn real(&mut self, key: &str) -> RpcResult<Option<f64>> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(f) if f.is_finite() => Ok(Some(f)),
                _ => Err(RpcError::bad(format!("{key} must be a finite number"))),
            },
            Some(v) => Err(wrong(key, "a number", &v)),
        }
    }

    pub fn string(&mut self, key: &str) -> RpcResult<Option<String>> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(wrong(key, "a string", &v)),
        }
    }

    pub fn strings(&mut self, key: &str) -> RpcResult<Option<Vec<String>>> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    v => Err(wrong(key, "an array of strings", &v)),
                })
                .collect::<RpcResult<Vec<_>>>()
                .map(Some),
            Some(v) => Err(wrong(key, "an array of strings", &v)),
        }
    }

    /// File indices (an empty array means "all files" in Transmission).
    pub fn indices(&mut self, key: &str) -> RpcResult<Option<Vec<usize>>> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|v| {
                    v.as_u64()
                        .and_then(|n| usize::try_from(n).ok())
                        .ok_or_else(|| wrong(key, "an array of file indices", &v))
                })
                .collect::<RpcResult<Vec<_>>>()
                .map(Some),
            Some(v) => Err(wrong(key, "an array of file indices", &v)),
        }
    }

    /// Refuses what no `take` asked for.
    pub fn finish(self, method: &str) -> RpcResult<()> {
        let mut keys: Vec<&String> = self.0.keys().collect();
        if keys.is_empty() {
            return Ok(());
        }
        keys.sort();
        let names: Vec<String> = keys.iter().map(|k| format!("{k:?}")).collect();
        Err(RpcError::bad(format!(
            "{method}: unknown argument{} {}",
            if names.len() == 1 { "" } else { "s" },
            names.join(", ")
        )))
    }
}

fn wrong(key: &str, expected: &str, got: &Value) -> RpcError {
    let kind = match got {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    RpcError::bad(format!("{key} must be {expected}, not {kind}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_parse_and_bad_ones_keep_their_tag() {
        let (tag, r) = parse(br#"{"method":"torrent-get","arguments":{"fields":["id"]},"tag":7}"#);
        assert_eq!(tag, Some(json!(7)));
        let r = r.unwrap();
        assert_eq!(r.method, "torrent-get");
        assert!(r.args.has("fields"));

        let (tag, r) = parse(br#"{"tag":3}"#);
        assert_eq!(tag, Some(json!(3)));
        assert!(matches!(r, Err(RpcError::NoMethod)));
        for bad in [
            &b"not json"[..],
            b"[1]",
            br#"{"method":5}"#,
            br#"{"method":"x","arguments":[]}"#,
            br#"{"method":"x","extra":1}"#,
        ] {
            assert!(parse(bad).1.is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn arguments_are_typed_and_leftovers_refused() {
        let mut a = Args(
            json!({"paused": 1, "n": -2, "r": 1.5, "s": "x", "f": [0, 2], "l": ["a"], "odd": true})
                .as_object()
                .unwrap()
                .clone(),
        );
        assert_eq!(a.bool("paused").unwrap(), Some(true));
        assert!(a.count("n").is_err());
        assert_eq!(a.real("r").unwrap(), Some(1.5));
        assert_eq!(a.string("s").unwrap().as_deref(), Some("x"));
        assert_eq!(a.indices("f").unwrap(), Some(vec![0, 2]));
        assert_eq!(a.strings("l").unwrap(), Some(vec!["a".to_string()]));
        assert_eq!(a.bool("missing").unwrap(), None);
        let e = a.finish("m").unwrap_err().to_string();
        assert!(e.contains("\"odd\""), "{e}");

        let mut b = Args(
            json!({"s": 5, "f": [-1], "b": "yes"})
                .as_object()
                .unwrap()
                .clone(),
        );
        assert!(b
            .string("s")
            .unwrap_err()
            .to_string()
            .contains("must be a string, not a number"));
        assert!(b.indices("f").is_err());
        assert!(b.bool("b").is_err());
        assert!(b.finish("m").is_ok());
    }

    #[test]
    fn answers_carry_result_and_tag() {
        let ok = answer(Some(json!(4)), Ok(Map::new()));
        assert_eq!(ok, json!({"arguments": {}, "result": "success", "tag": 4}));
        let err = answer(None, Err(RpcError::UnknownMethod("x".into())));
        assert_eq!(err["result"], "method name not recognized: \"x\"");
        assert!(err.get("tag").is_none());
    }
}
