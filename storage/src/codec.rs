//! A small length-prefixed binary encoding for records kept in RocksDB values.

use crate::StorageError;

/// Appends big-endian integers and length-prefixed strings and byte strings.
#[derive(Default)]
pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    pub(crate) fn i8(&mut self, v: i8) -> &mut Self {
        self.0.push(v as u8);
        self
    }

    pub(crate) fn i32(&mut self, v: i32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub(crate) fn i64(&mut self, v: i64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub(crate) fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.0.extend_from_slice(&(v.len() as u32).to_be_bytes());
        self.0.extend_from_slice(v);
        self
    }

    pub(crate) fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }

    /// A nullable string: a presence byte, then the string.
    pub(crate) fn opt_str(&mut self, v: Option<&str>) -> &mut Self {
        match v {
            Some(s) => self.i8(1).str(s),
            None => self.i8(0),
        }
    }
}

/// Reads what [`Writer`] wrote; every read fails cleanly on short or malformed input.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    what: &'a str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], what: &'a str) -> Self {
        Reader { rest: bytes, what }
    }

    fn bad(&self) -> StorageError {
        StorageError::Corrupt(format!("malformed {}", self.what))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], StorageError> {
        if self.rest.len() < n {
            return Err(self.bad());
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], StorageError> {
        let bad = self.bad();
        self.take(N)?.try_into().map_err(|_| bad)
    }

    pub(crate) fn i8(&mut self) -> Result<i8, StorageError> {
        Ok(self.array::<1>()?[0] as i8)
    }

    pub(crate) fn i32(&mut self) -> Result<i32, StorageError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub(crate) fn i64(&mut self) -> Result<i64, StorageError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], StorageError> {
        let len = u32::from_be_bytes(self.array()?) as usize;
        self.take(len)
    }

    pub(crate) fn str(&mut self) -> Result<String, StorageError> {
        let bad = self.bad();
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| bad)
    }

    pub(crate) fn opt_str(&mut self) -> Result<Option<String>, StorageError> {
        match self.i8()? {
            0 => Ok(None),
            1 => Ok(Some(self.str()?)),
            _ => Err(self.bad()),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }
}
