//! Secrets: device tokens and enrolment codes are random, shown once, and
//! stored only as SHA-256 hashes.

use sha2::{Digest, Sha256};

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("the OS provides randomness");
    buf
}

/// A bearer token: 256 random bits.
pub fn new_token() -> String {
    format!("fld_{}", hex::encode(random_bytes::<32>()))
}

/// A one-time enrolment code a person can type: 12 characters from an
/// alphabet without look-alikes (60 bits), grouped by 4.
pub fn new_enrolment_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let raw = random_bytes::<12>();
    let chars: Vec<char> = raw
        .iter()
        .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
        .collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// What the server stores of a secret. Codes are normalised first so that
/// `abcd-efgh` and `ABCDEFGH` are the same code.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.trim().as_bytes()))
}

pub fn hash_code(code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    hash(&normal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_differ_and_codes_normalise() {
        assert_ne!(new_token(), new_token());
        let code = new_enrolment_code();
        assert_eq!(code.len(), 14);
        assert_eq!(
            hash_code(&code),
            hash_code(&code.to_lowercase().replace('-', ""))
        );
    }
}
