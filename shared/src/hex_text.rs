//! Lowercase hex text of bytes, for the strings every request builds (request ids, replay digests,
//! ledger owners): the same text as `hex::encode`, written through `hex::encode_to_slice` into one
//! buffer instead of `hex::encode`'s char-by-char iterator (a sixteenth of a GET verify's
//! instructions went to that iterator; docs/benchmarks.md §17).

/// Lowercase hex of `bytes`.
pub fn lower_hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    push_lower_hex(&mut text, bytes);
    text
}

/// Appends the lowercase hex of `bytes` to `text` (an id with a prefix in one allocation).
pub fn push_lower_hex(text: &mut String, bytes: &[u8]) {
    let mut buffer = [0_u8; 64];
    for chunk in bytes.chunks(buffer.len() / 2) {
        let digits = &mut buffer[..chunk.len() * 2];
        // The buffer is exactly twice the chunk, the one length `encode_to_slice` refuses nothing for.
        let _ = hex::encode_to_slice(chunk, digits);
        // Hex digits are ASCII: always UTF-8.
        text.push_str(std::str::from_utf8(digits).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_values() {
        assert_eq!(lower_hex(&[]), "");
        assert_eq!(lower_hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
    }

    proptest! {
        #[test]
        fn writes_what_hex_encode_writes(bytes in prop::collection::vec(any::<u8>(), 0..80)) {
            prop_assert_eq!(lower_hex(&bytes), hex::encode(&bytes));
            let mut text = String::from("p-");
            push_lower_hex(&mut text, &bytes);
            prop_assert_eq!(text, format!("p-{}", hex::encode(&bytes)));
        }
    }
}
