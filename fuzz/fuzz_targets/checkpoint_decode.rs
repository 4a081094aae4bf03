//! The checkpoint decoder (`Checkpoint::decode`) on arbitrary bytes, as stored and with a
//! valid SHA-256 appended (so that mutations get past the checksum to the header and the
//! snapshots). What decodes must encode and decode back to the same checkpoint.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use sluice_host::runtime::Checkpoint;

fn check(bytes: &[u8]) {
    if let Ok(checkpoint) = Checkpoint::decode(bytes) {
        let again =
            Checkpoint::decode(&checkpoint.encode()).expect("an encoded checkpoint decodes");
        assert_eq!(again, checkpoint);
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut sealed = data.to_vec();
    sealed.extend_from_slice(&Sha256::digest(data));
    check(&sealed);
});
