//! JSON bodies must be objects. serde's derived struct deserializers also accept a JSON array,
//! taking the fields by position, so `[null, null]` would quietly set both limits to
//! "unlimited"; [`Object`] refuses anything but an object (schemathesis found this).

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

/// A `T` that was given as a JSON object.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Object<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct OnlyMaps<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for OnlyMaps<T> {
            type Value = Object<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(Object)
            }
        }
        d.deserialize_map(OnlyMaps(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::control::Limits;

    #[test]
    fn objects_only() {
        let ok: Object<Limits> = serde_json::from_str(r#"{"download_bps": 5}"#).unwrap();
        assert_eq!(ok.0.download_bps, Some(5));
        // What a derived deserializer alone accepts: fields by position.
        assert!(serde_json::from_str::<Limits>("[null, null]").is_ok());
        for bad in ["[null, null]", "[5, 6]", "5", "\"x\"", "null"] {
            assert!(
                serde_json::from_str::<Object<Limits>>(bad).is_err(),
                "{bad} accepted"
            );
        }
        let unknown = serde_json::from_str::<Object<Limits>>(r#"{"upload": 1}"#);
        assert!(unknown.is_err(), "unknown fields are still refused");
        let none: Option<Object<Limits>> = serde_json::from_str("null").unwrap();
        assert!(none.is_none());
    }
}
