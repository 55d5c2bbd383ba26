//! Serdes as types: each serde is a small value whose type says what it turns bytes into.
//!
//! A [`Serde`] converts between a record's key or value bytes (`None` is Kafka's null) and
//! a Rust value. The built-in ones cover the common cases — [`Str`], [`Raw`], [`I64`],
//! [`U64`], [`F64`], [`Unit`], [`Json`], [`Rkyv`] — and [`Nullable`] lifts any of them to
//! accept null. A user type implements [`Serde`] itself for anything else.
//!
//! Numbers are big-endian fixed width, as Kafka's `LongSerde`/`DoubleSerde` write them,
//! so topics stay readable by Java and Python consumers.

use std::fmt;
use std::marker::PhantomData;

use bytes::Bytes;

/// Why a value could not be (de)serialized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerdeError(pub String);

impl fmt::Display for SerdeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SerdeError {}

impl SerdeError {
    fn null(serde: &str) -> Self {
        SerdeError(format!(
            "null, which {serde} does not accept (wrap it in Nullable to read nulls as None)"
        ))
    }
}

/// Converts between bytes and a value of type [`Serde::Target`].
pub trait Serde: Clone + Send + Sync + 'static {
    /// The value this serde produces and accepts.
    type Target: Clone + Send + 'static;

    /// The value's bytes, or `None` for Kafka's null.
    fn serialize(&self, value: &Self::Target) -> Result<Option<Vec<u8>>, SerdeError>;

    /// The value of these bytes (`None`: the record's key or value was null).
    fn deserialize(&self, data: Option<&[u8]>) -> Result<Self::Target, SerdeError>;

    /// [`serialize`](Self::serialize) into shared bytes; a serde whose values already are
    /// bytes (like [`Raw`]) hands out a reference instead of a copy.
    fn serialize_bytes(&self, value: &Self::Target) -> Result<Option<Bytes>, SerdeError> {
        self.serialize(value).map(|b| b.map(Bytes::from))
    }

    /// [`deserialize`](Self::deserialize) from shared bytes; a serde whose values are bytes
    /// (like [`Raw`]) keeps a reference instead of copying.
    fn deserialize_bytes(&self, data: Option<&Bytes>) -> Result<Self::Target, SerdeError> {
        self.deserialize(data.map(|b| &b[..]))
    }

    /// [`serialize`](Self::serialize) appending to `out`; `false` (nothing appended) for
    /// Kafka's null. Lets a caller reuse one buffer or size it once (store keys, windowed
    /// keys); the built-in serdes write without an intermediate `Vec`.
    fn serialize_into(&self, value: &Self::Target, out: &mut Vec<u8>) -> Result<bool, SerdeError> {
        Ok(match self.serialize(value)? {
            Some(b) => {
                out.extend_from_slice(&b);
                true
            }
            None => false,
        })
    }

    /// A short name for topology descriptions and errors.
    fn name(&self) -> String;
}

fn present<'a>(data: Option<&'a [u8]>, serde: &str) -> Result<&'a [u8], SerdeError> {
    data.ok_or_else(|| SerdeError::null(serde))
}

/// UTF-8 text.
#[derive(Debug, Clone, Copy, Default)]
pub struct Str;

impl Serde for Str {
    type Target = String;
    fn serialize(&self, value: &String) -> Result<Option<Vec<u8>>, SerdeError> {
        Ok(Some(value.as_bytes().to_vec()))
    }
    fn serialize_into(&self, value: &String, out: &mut Vec<u8>) -> Result<bool, SerdeError> {
        out.extend_from_slice(value.as_bytes());
        Ok(true)
    }
    fn deserialize(&self, data: Option<&[u8]>) -> Result<String, SerdeError> {
        let data = present(data, "Str")?;
        String::from_utf8(data.to_vec())
            .map_err(|e| SerdeError(format!("not UTF-8 text: {}", e.utf8_error())))
    }
    fn name(&self) -> String {
        "Str".into()
    }
}

/// The bytes as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct Raw;

impl Serde for Raw {
    type Target = Bytes;
    fn serialize(&self, value: &Bytes) -> Result<Option<Vec<u8>>, SerdeError> {
        Ok(Some(value.to_vec()))
    }
    fn serialize_into(&self, value: &Bytes, out: &mut Vec<u8>) -> Result<bool, SerdeError> {
        out.extend_from_slice(value);
        Ok(true)
    }
    fn deserialize(&self, data: Option<&[u8]>) -> Result<Bytes, SerdeError> {
        Ok(Bytes::copy_from_slice(present(data, "Raw")?))
    }
    fn serialize_bytes(&self, value: &Bytes) -> Result<Option<Bytes>, SerdeError> {
        Ok(Some(value.clone()))
    }
    fn deserialize_bytes(&self, data: Option<&Bytes>) -> Result<Bytes, SerdeError> {
        data.cloned().ok_or_else(|| SerdeError::null("Raw"))
    }
    fn name(&self) -> String {
        "Raw".into()
    }
}

/// No value: reads anything (including null) as `()`, writes null. For keyless streams.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unit;

impl Serde for Unit {
    type Target = ();
    fn serialize(&self, _: &()) -> Result<Option<Vec<u8>>, SerdeError> {
        Ok(None)
    }
    fn deserialize(&self, _: Option<&[u8]>) -> Result<(), SerdeError> {
        Ok(())
    }
    fn name(&self) -> String {
        "Unit".into()
    }
}

macro_rules! fixed_width {
    ($(#[$doc:meta])* $name:ident, $ty:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name;

        impl Serde for $name {
            type Target = $ty;
            fn serialize(&self, value: &$ty) -> Result<Option<Vec<u8>>, SerdeError> {
                Ok(Some(value.to_be_bytes().to_vec()))
            }
            fn serialize_into(&self, value: &$ty, out: &mut Vec<u8>) -> Result<bool, SerdeError> {
                out.extend_from_slice(&value.to_be_bytes());
                Ok(true)
            }
            fn deserialize(&self, data: Option<&[u8]>) -> Result<$ty, SerdeError> {
                let data = present(data, stringify!($name))?;
                let bytes: [u8; std::mem::size_of::<$ty>()] = data.try_into().map_err(|_| {
                    SerdeError(format!(
                        "{} bytes where {} expects {}",
                        data.len(),
                        stringify!($name),
                        std::mem::size_of::<$ty>()
                    ))
                })?;
                Ok(<$ty>::from_be_bytes(bytes))
            }
            fn name(&self) -> String {
                stringify!($name).into()
            }
        }
    };
}

fixed_width!(
    /// A signed 64-bit integer, 8 bytes big-endian (Kafka's `LongSerde`).
    I64,
    i64
);
fixed_width!(
    /// An unsigned 64-bit integer, 8 bytes big-endian.
    U64,
    u64
);
fixed_width!(
    /// A 64-bit float, 8 bytes big-endian IEEE 754 (Kafka's `DoubleSerde`).
    F64,
    f64
);

/// JSON through serde: `Json::<T>::new()` reads and writes any `T: Serialize + Deserialize`.
pub struct Json<T>(PhantomData<fn() -> T>);

impl<T> Json<T> {
    /// The JSON serde for `T`.
    pub fn new() -> Self {
        Json(PhantomData)
    }
}

impl<T> Default for Json<T> {
    fn default() -> Self {
        Json::new()
    }
}

impl<T> Clone for Json<T> {
    fn clone(&self) -> Self {
        Json::new()
    }
}

impl<T> fmt::Debug for Json<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Json<{}>", std::any::type_name::<T>())
    }
}

impl<T> Serde for Json<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Clone + Send + 'static,
{
    type Target = T;
    fn serialize(&self, value: &T) -> Result<Option<Vec<u8>>, SerdeError> {
        serde_json::to_vec(value)
            .map(Some)
            .map_err(|e| SerdeError(format!("JSON: {e}")))
    }
    fn deserialize(&self, data: Option<&[u8]>) -> Result<T, SerdeError> {
        serde_json::from_slice(present(data, "Json")?).map_err(|e| SerdeError(format!("JSON: {e}")))
    }
    fn name(&self) -> String {
        let full = std::any::type_name::<T>();
        format!("Json<{}>", full.rsplit("::").next().unwrap_or(full))
    }
}

/// rkyv's zero-copy archive format: compact and fast for values only Rust reads.
///
/// Bytes are validated on read (`bytecheck`), so a corrupt record is an error, never
/// undefined behaviour.
pub struct Rkyv<T>(PhantomData<fn() -> T>);

impl<T> Rkyv<T> {
    /// The rkyv serde for `T`.
    pub fn new() -> Self {
        Rkyv(PhantomData)
    }
}

impl<T> Default for Rkyv<T> {
    fn default() -> Self {
        Rkyv::new()
    }
}

impl<T> Clone for Rkyv<T> {
    fn clone(&self) -> Self {
        Rkyv::new()
    }
}

impl<T> fmt::Debug for Rkyv<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rkyv<{}>", std::any::type_name::<T>())
    }
}

impl<T> Serde for Rkyv<T>
where
    T: rkyv::Archive
        + for<'a> rkyv::Serialize<
            rkyv::api::high::HighSerializer<
                rkyv::util::AlignedVec,
                rkyv::ser::allocator::ArenaHandle<'a>,
                rkyv::rancor::Error,
            >,
        > + Clone
        + Send
        + 'static,
    T::Archived: for<'a> rkyv::bytecheck::CheckBytes<rkyv::api::high::HighValidator<'a, rkyv::rancor::Error>>
        + rkyv::Deserialize<T, rkyv::api::high::HighDeserializer<rkyv::rancor::Error>>,
{
    type Target = T;
    fn serialize(&self, value: &T) -> Result<Option<Vec<u8>>, SerdeError> {
        rkyv::to_bytes::<rkyv::rancor::Error>(value)
            .map(|b| Some(b.to_vec()))
            .map_err(|e| SerdeError(format!("rkyv: {e}")))
    }
    fn deserialize(&self, data: Option<&[u8]>) -> Result<T, SerdeError> {
        let data = present(data, "Rkyv")?;
        // rkyv needs its input aligned; record bytes from the log are not.
        let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(data.len());
        aligned.extend_from_slice(data);
        rkyv::from_bytes::<T, rkyv::rancor::Error>(&aligned)
            .map_err(|e| SerdeError(format!("rkyv: {e}")))
    }
    fn name(&self) -> String {
        let full = std::any::type_name::<T>();
        format!("Rkyv<{}>", full.rsplit("::").next().unwrap_or(full))
    }
}

/// Lifts a serde to accept Kafka's null: null reads as `None`, `None` writes null.
#[derive(Debug, Clone, Copy, Default)]
pub struct Nullable<S>(pub S);

impl<S: Serde> Serde for Nullable<S> {
    type Target = Option<S::Target>;
    fn serialize(&self, value: &Option<S::Target>) -> Result<Option<Vec<u8>>, SerdeError> {
        match value {
            Some(v) => self.0.serialize(v),
            None => Ok(None),
        }
    }
    fn serialize_into(
        &self,
        value: &Option<S::Target>,
        out: &mut Vec<u8>,
    ) -> Result<bool, SerdeError> {
        match value {
            Some(v) => self.0.serialize_into(v, out),
            None => Ok(false),
        }
    }
    fn deserialize(&self, data: Option<&[u8]>) -> Result<Option<S::Target>, SerdeError> {
        data.map(|d| self.0.deserialize(Some(d))).transpose()
    }
    fn name(&self) -> String {
        format!("Nullable<{}>", self.0.name())
    }
}

/// Serializes `value` with `serde` into bytes that must not be null (store keys and values).
pub(crate) fn to_bytes<S: Serde>(serde: &S, value: &S::Target) -> Result<Vec<u8>, SerdeError> {
    serde.serialize(value)?.ok_or_else(|| {
        SerdeError(format!(
            "{} wrote null where bytes are required",
            serde.name()
        ))
    })
}

/// [`to_bytes`] appended to `out`.
pub(crate) fn append_bytes<S: Serde>(
    serde: &S,
    value: &S::Target,
    out: &mut Vec<u8>,
) -> Result<(), SerdeError> {
    if serde.serialize_into(value, out)? {
        Ok(())
    } else {
        Err(SerdeError(format!(
            "{} wrote null where bytes are required",
            serde.name()
        )))
    }
}

/// A serde behind a pointer, so handles like `KTable<K, V>` need not carry serde types.
pub(crate) trait DynSerde<T>: Send + Sync {
    fn ser(&self, value: &T) -> Result<Option<Vec<u8>>, SerdeError>;
    fn ser_into(&self, value: &T, out: &mut Vec<u8>) -> Result<bool, SerdeError>;
    fn de(&self, data: Option<&[u8]>) -> Result<T, SerdeError>;
    fn serde_name(&self) -> String;
}

impl<S: Serde> DynSerde<S::Target> for S {
    fn ser(&self, value: &S::Target) -> Result<Option<Vec<u8>>, SerdeError> {
        self.serialize(value)
    }
    fn ser_into(&self, value: &S::Target, out: &mut Vec<u8>) -> Result<bool, SerdeError> {
        self.serialize_into(value, out)
    }
    fn de(&self, data: Option<&[u8]>) -> Result<S::Target, SerdeError> {
        self.deserialize(data)
    }
    fn serde_name(&self) -> String {
        self.name()
    }
}

/// A shared, type-erased serde; itself a [`Serde`].
pub(crate) type SerdeRef<T> = std::sync::Arc<dyn DynSerde<T>>;

impl<T: Clone + Send + 'static> Serde for SerdeRef<T> {
    type Target = T;
    // `(**self)`: the Arc itself is a DynSerde too (through this impl); call the inner one.
    fn serialize(&self, value: &T) -> Result<Option<Vec<u8>>, SerdeError> {
        (**self).ser(value)
    }
    fn serialize_into(&self, value: &T, out: &mut Vec<u8>) -> Result<bool, SerdeError> {
        (**self).ser_into(value, out)
    }
    fn deserialize(&self, data: Option<&[u8]>) -> Result<T, SerdeError> {
        (**self).de(data)
    }
    fn name(&self) -> String {
        (**self).serde_name()
    }
}

pub(crate) fn erase<S: Serde>(s: S) -> SerdeRef<S::Target> {
    std::sync::Arc::new(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Every built-in serde reads back what it writes, and refuses bytes it cannot read
    // with a message instead of a panic.
    #[test]
    fn round_trips_and_clear_errors() {
        assert_eq!(Str.deserialize(Some(b"hi")).unwrap(), "hi");
        assert!(
            Str.deserialize(Some(&[0xff]))
                .unwrap_err()
                .0
                .contains("UTF-8")
        );
        assert!(Str.deserialize(None).unwrap_err().0.contains("Nullable"));
        let b = I64.serialize(&-5).unwrap().unwrap();
        assert_eq!(b, (-5i64).to_be_bytes());
        assert_eq!(I64.deserialize(Some(&b)).unwrap(), -5);
        assert!(
            I64.deserialize(Some(b"abc"))
                .unwrap_err()
                .0
                .contains("3 bytes")
        );
        assert_eq!(Nullable(Str).deserialize(None).unwrap(), None);
        assert_eq!(Nullable(Str).serialize(&None).unwrap(), None);
        assert_eq!(Unit.deserialize(None).unwrap(), ());

        #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
        struct View {
            page: String,
            ts: i64,
        }
        let json = Json::<View>::new();
        let v = View {
            page: "/a".into(),
            ts: 7,
        };
        let bytes = json.serialize(&v).unwrap().unwrap();
        assert_eq!(json.deserialize(Some(&bytes)).unwrap(), v);
        assert!(
            json.deserialize(Some(b"{"))
                .unwrap_err()
                .0
                .starts_with("JSON")
        );
        assert_eq!(json.name(), "Json<View>");
    }

    #[test]
    fn rkyv_round_trip_and_rejects_garbage() {
        #[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Debug, PartialEq)]
        struct Agg {
            count: u64,
            last: String,
        }
        let serde = Rkyv::<Agg>::new();
        let a = Agg {
            count: 3,
            last: "x".into(),
        };
        let bytes = serde.serialize(&a).unwrap().unwrap();
        assert_eq!(serde.deserialize(Some(&bytes)).unwrap(), a);
        assert!(serde.deserialize(Some(&[1, 2, 3])).is_err());
    }
}
